"""In Chromium: Settings > Defender Experts > Notification contacts."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from contacts.models import NotificationContact, NotificationType
from tests import factories
from tests.conftest import complete_mfa

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NOTE = "Given the urgent nature of the communications, it is recommended to have someone available at all times."


@pytest.fixture
def directory(contoso):
    alice = factories.directory_user(contoso, "Alice Martin", mail="alice@contoso.example", job_title="CISO")
    bob = factories.directory_user(contoso, "Bob Stone", mail="bob@contoso.example")
    dora = factories.directory_user(contoso, "Dora Disabled", mail="dora@contoso.example", enabled=False)
    factories.directory_user(contoso, "Alicia Keyes", mail="alicia@contoso.example")
    factories.directory_user(contoso, "Malik Ali", mail="malik@contoso.example")
    soc = factories.directory_group(contoso, "SOC Team", members=[alice, bob, dora], mail="soc@contoso.example")
    factories.directory_group(contoso, "Security Readers", mail="", mail_enabled=False, security_enabled=True)
    # Another tenant's people never show up.
    factories.directory_user(factories.tenant("Fabrikam", "fabrikam.example"), "Alice Fabrikam")
    return {"alice": alice, "bob": bob, "soc": soc}


def _url(live_server):
    return f"{live_server.url}/settings/defender-experts/notification-contacts/"


def _search(page, text):
    box = page.get_by_role("combobox", name="Contact person or team")
    box.fill("")
    box.press_sequentially(text, delay=20)
    return box


def _row(page, section, name):
    return page.get_by_test_id(f"section-{section}").locator(f'tr[data-contact-name="{name}"]')


def test_search_add_both_types_phone_reorder_and_remove(
    live_server, page, browser_login, axe_check, screenshot_dir, admin, contoso, directory
):
    browser_login(admin)
    page.goto(_url(live_server))
    expect(page.get_by_role("heading", level=1)).to_have_text("Notification contacts")
    expect(page.get_by_text(NOTE)).to_be_visible()
    expect(page.get_by_test_id("warning-no-incident")).to_be_visible()
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/contacts-empty.png", full_page=True)

    # Fewer than 2 characters prompts for more.
    _search(page, "a")
    expect(page.locator("#picker-any-results")).to_contain_text("Type at least 2 characters to search.")

    # Typeahead: people and teams, ranked, tenant-scoped.
    _search(page, "ali")
    listbox = page.get_by_role("listbox")
    expect(listbox.get_by_role("option")).to_have_count(3)
    expect(listbox.get_by_role("option").first).to_contain_text("Alice Martin")
    expect(listbox.get_by_role("option").nth(2)).to_contain_text("Malik Ali")
    expect(page.get_by_text("Alice Fabrikam")).to_have_count(0)
    expect(page.locator("[data-picker-status]")).to_contain_text("3 results available")
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/contacts-typeahead-open.png", full_page=True)

    # Keyboard: first option, Enter chooses; Incident contact; Add.
    box = page.get_by_role("combobox", name="Contact person or team")
    box.press("ArrowDown")
    box.press("Enter")
    expect(page.get_by_text("Selected: Alice Martin (Person)")).to_be_visible()
    expect(page.get_by_label("Notification type")).to_have_value("incident")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_text("Alice Martin was added as an incident contact.")).to_be_visible()
    expect(_row(page, "incident", "Alice Martin")).to_be_visible()
    expect(page.get_by_test_id("warning-no-incident")).to_have_count(0)
    expect(page.get_by_test_id("warning-no-phone")).to_be_visible()
    # The outbox delivered it on commit (tasks run eagerly here): the row says when.
    expect(_row(page, "incident", "Alice Martin")).to_contain_text("Sent")

    # Mouse: Bob as a second incident contact, with a phone number.
    _search(page, "bob")
    page.get_by_role("option", name="Bob Stone").click()
    page.get_by_label("Phone number (optional)").fill("+44 20 7946 0958")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(_row(page, "incident", "Bob Stone").get_by_label("Phone number for Bob Stone")).to_have_value(
        "+44 20 7946 0958"
    )
    expect(page.get_by_test_id("warning-no-phone")).to_have_count(0)

    # A team as service review contact, with a phone number too (any contact may have one).
    _search(page, "soc")
    option = page.get_by_role("option", name="SOC Team")
    expect(option).to_contain_text("3 members")
    option.click()
    page.get_by_label("Notification type").select_option(label="Service review contact")
    page.get_by_label("Phone number (optional)").fill("+1 425-555-0142")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_text("SOC Team was added as a service review contact.")).to_be_visible()
    team_row = _row(page, "service_review", "SOC Team")
    expect(team_row).to_contain_text("soc@contoso.example")
    expect(team_row.get_by_label("Phone number for SOC Team")).to_have_value("+1 425 555 0142")
    # Expanding the team previews who receives notifications; disabled members flagged.
    team_row.get_by_text("Preview who receives notifications").click()
    expect(team_row.get_by_role("listitem")).to_have_count(3)
    expect(team_row.get_by_role("listitem").filter(has_text="Dora Disabled")).to_contain_text(
        "Disabled — won't receive notifications"
    )

    # The same person can hold both types.
    _search(page, "alice m")
    page.get_by_role("option", name="Alice Martin").click()
    page.get_by_label("Notification type").select_option("service_review")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(_row(page, "service_review", "Alice Martin")).to_be_visible()

    # ...but not the same type twice.
    _search(page, "alice m")
    expect(page.get_by_role("option", name="Alice Martin")).to_contain_text(
        "Already an incident contact and service review contact"
    )
    page.get_by_role("option", name="Alice Martin").click()
    page.get_by_label("Notification type").select_option("incident")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_test_id("entry-error")).to_have_text("Alice Martin is already an incident contact.")
    assert NotificationContact.objects.filter(notification_type=NotificationType.INCIDENT).count() == 2

    # A group that can't receive email is shown, with the reason, but can't be chosen.
    page.goto(_url(live_server))
    box = _search(page, "security r")
    readers = page.get_by_role("option", name="Security Readers")
    expect(readers).to_contain_text("This group can't receive email")
    expect(readers).to_have_attribute("aria-disabled", "true")
    box.press("ArrowDown")
    box.press("Enter")
    expect(page.locator("[data-picker-status]")).to_contain_text("can't be added: this group can't receive email")
    expect(page.locator("[data-picker-selected]")).to_be_hidden()

    # No result says so.
    _search(page, "nobody here")
    expect(page.locator("#picker-any-results")).to_contain_text("No people or teams in your directory match")

    # Phone number: invalid input keeps what was typed and explains; a valid one saves.
    row = _row(page, "incident", "Alice Martin")
    row.get_by_label("Phone number for Alice Martin").fill("12345")
    row.get_by_role("button", name="Save phone number for Alice Martin").click()
    row = _row(page, "incident", "Alice Martin")
    expect(row.get_by_text("The phone number must be in international format.")).to_be_visible()
    expect(row.get_by_label("Phone number for Alice Martin")).to_have_value("12345")
    # The keyboard is back on the field, which the error describes.
    expect(row.get_by_label("Phone number for Alice Martin")).to_be_focused()
    expect(row.get_by_label("Phone number for Alice Martin")).to_have_attribute("aria-invalid", "true")
    row.get_by_label("Phone number for Alice Martin").fill("+1 425 555 0100")
    row.get_by_role("button", name="Save phone number for Alice Martin").click()
    expect(page.get_by_text("Phone number for Alice Martin saved.")).to_be_visible()
    expect(_row(page, "incident", "Alice Martin").get_by_label("Phone number for Alice Martin")).to_have_value(
        "+1 425 555 0100"
    )

    # Reorder: Bob becomes the primary incident contact.
    expect(_row(page, "incident", "Alice Martin")).to_contain_text("Primary")
    _row(page, "incident", "Bob Stone").get_by_role("button", name="Move Bob Stone up").click()
    expect(page.locator("#contacts-board").get_by_text("Bob Stone is now the primary contact.")).to_be_visible()
    expect(_row(page, "incident", "Bob Stone")).to_contain_text("Primary")
    expect(_row(page, "incident", "Alice Martin")).to_contain_text("Backup 1")

    # Remove: a dialog states the consequence, keeps focus inside and returns it on Cancel.
    remove_alice = _row(page, "incident", "Alice Martin").get_by_role(
        "button", name="Remove Alice Martin as incident contact"
    )
    remove_alice.click()
    dialog = page.get_by_role("dialog", name="Remove Alice Martin?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("will get a short email saying so")
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/contacts-remove-dialog.png")
    dialog.get_by_role("button", name="Remove", exact=True).click()
    expect(page.get_by_text("Alice Martin was removed as an incident contact.")).to_be_visible()
    expect(_row(page, "incident", "Alice Martin")).to_have_count(0)
    expect(_row(page, "service_review", "Alice Martin")).to_be_visible()
    # Cancelling keeps the contact, and focus goes back to the button that opened the dialog.
    remove_bob = _row(page, "incident", "Bob Stone").get_by_role("button", name="Remove Bob Stone as incident contact")
    remove_bob.click()
    dialog = page.get_by_role("dialog", name="Remove Bob Stone?")
    expect(dialog).to_be_visible()
    page.keyboard.press("Tab")
    expect(dialog.locator(":focus")).to_have_count(1)  # focus stays inside the dialog
    dialog.get_by_role("link", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(remove_bob).to_be_focused()
    expect(_row(page, "incident", "Bob Stone")).to_be_visible()
    assert NotificationContact.objects.active().filter(display_name="Bob Stone").exists()

    # History shows every change.
    page.reload()
    history = page.get_by_test_id("history")
    expect(history).to_contain_text("Removed Alice Martin as incident contact")
    expect(history).to_contain_text("Moved Bob Stone up")
    expect(history).to_contain_text("Set the phone number of Alice Martin")
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/contacts-page.png", full_page=True)


def test_typeahead_by_keyboard_alone(live_server, page, browser_login, axe_check, admin, contoso, directory):
    browser_login(admin)
    page.goto(_url(live_server))
    box = page.get_by_role("combobox", name="Contact person or team")
    box.focus()
    page.keyboard.type("ali", delay=30)
    expect(page.get_by_role("listbox").get_by_role("option")).to_have_count(3)
    expect(box).to_have_attribute("aria-expanded", "true")
    status = page.locator("[data-picker-status]")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_have_text(
        "3 results available. Use the up and down arrow keys to review them and Enter to choose."
    )
    # Arrow keys move the active option (aria-activedescendant), wrapping around.
    page.keyboard.press("ArrowDown")
    first = page.get_by_role("option").nth(0)
    expect(first).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", first.get_attribute("id"))
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    last = page.get_by_role("option").nth(2)
    expect(last).to_have_attribute("aria-selected", "true")
    # Escape closes the list; ArrowDown reopens it.
    page.keyboard.press("Escape")
    expect(page.get_by_role("listbox")).to_be_hidden()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("listbox")).to_be_visible()
    page.keyboard.press("Home")
    page.keyboard.press("ArrowDown")  # Alicia Keyes
    page.keyboard.press("Enter")
    expect(box).to_have_value("Alicia Keyes")
    expect(status).to_contain_text("Selected Alicia Keyes.")
    axe_check(page)
    # Tab through the form: Search button, Notification type, phone, Add.
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Search")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Notification type")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Phone number (optional)")).to_be_focused()
    page.keyboard.type("+1 425 555 0199")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Add", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Alicia Keyes was added as an incident contact.")).to_be_visible()
    contact = NotificationContact.objects.get(display_name="Alicia Keyes")
    assert contact.notification_type == NotificationType.INCIDENT
    assert contact.phone == "+14255550199"


def test_works_without_javascript(live_server, browser, browser_login, admin, contoso, directory, axe_check):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    complete_mfa(page, admin)
    page.goto(_url(live_server))
    # The plain GET form: a results page with an Add button per result.
    page.get_by_role("searchbox", name="Contact person or team").fill("bob")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Search your directory")
    page.get_by_label("Notification type").select_option("incident")
    page.get_by_role("button", name="Add Bob Stone").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Notification contacts")
    expect(page.get_by_text("Bob Stone was added as an incident contact.")).to_be_visible()
    # Removal asks on a confirmation page.
    page.get_by_role("button", name="Remove Bob Stone as incident contact").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Remove Bob Stone?")
    # The only incident contact: the page names the consequence before removing.
    expect(page.get_by_test_id("removal-consequence")).to_contain_text("our experts will have nobody to notify")
    page.get_by_role("button", name="Remove the last incident contact").click()
    expect(page.get_by_text("Bob Stone was removed as an incident contact.")).to_be_visible()
    assert not NotificationContact.objects.active().exists()
    context.close()


def test_reader_sees_contacts_but_no_controls(
    live_server, page, browser_login, axe_check, screenshot_dir, admin, reader, contoso, directory
):
    from contacts.services import contact_add

    contact_add(
        tenant=contoso, acting_user=admin, notification_type="incident", directory_user_id=directory["alice"].pk
    )
    contact_add(
        tenant=contoso, acting_user=admin, notification_type="service_review", directory_group_id=directory["soc"].pk
    )
    # Later, the team is deleted from the directory: it stays listed, flagged.
    directory["soc"].delete()
    browser_login(reader)
    page.goto(_url(live_server))
    expect(page.get_by_test_id("read-only")).to_be_visible()
    expect(_row(page, "incident", "Alice Martin")).to_be_visible()
    expect(_row(page, "service_review", "SOC Team")).to_contain_text("No longer in your directory")
    expect(page.get_by_test_id("warning-flagged")).to_contain_text("1 contact can't receive notifications.")
    expect(page.get_by_role("button", name="Add", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Remove Alice Martin as incident contact")).to_have_count(0)
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/contacts-reader-flagged.png", full_page=True)


def test_board_changes_by_keyboard_keep_focus_and_announce(live_server, page, browser_login, admin, contoso, directory):
    from contacts.services import TEST_NOTIFICATION_LIMIT, contact_add

    for name in ("alice", "bob"):
        contact_add(
            tenant=contoso, acting_user=admin, notification_type="incident", directory_user_id=directory[name].pk
        )
    browser_login(admin)
    page.goto(_url(live_server))
    live = page.locator("[data-board-live]")
    expect(live).to_have_attribute("aria-live", "polite")
    # Move Bob up by keyboard: the board is redrawn in place (no page load),
    # focus stays on Bob's remaining arrow, and the change is announced.
    page.get_by_role("button", name="Move Bob Stone up").focus()
    page.keyboard.press("Enter")
    expect(live).to_have_text("Bob Stone is now the primary contact.")
    expect(page.get_by_role("button", name="Move Bob Stone down")).to_be_focused()
    expect(_row(page, "incident", "Bob Stone")).to_contain_text("Primary")
    # And back down again, without leaving the keyboard.
    page.keyboard.press("Enter")
    expect(live).to_have_text("Bob Stone is now backup 1.")
    expect(page.get_by_role("button", name="Move Bob Stone up")).to_be_focused()
    # Test notifications up to the limit keep focus on the button; the refusal
    # is focused so it is read out, and it says when the next one is allowed.
    send = page.get_by_role("button", name="Send test notification to Alice Martin")
    for _ in range(TEST_NOTIFICATION_LIMIT):
        send.focus()
        page.keyboard.press("Enter")
        expect(live).to_have_text("A test notification is on its way to alice@contoso.example.")
        expect(send).to_be_focused()
        live.evaluate("el => { el.textContent = ''; }")
    page.keyboard.press("Enter")
    notice = page.locator("[data-board-notice]")
    expect(notice).to_be_focused()
    expect(notice).to_contain_text(
        "Alice Martin has already been sent 3 test notifications in the last 10 minutes, the most we allow for one "
        "contact. You can send another in 10 minutes, at "
    )
