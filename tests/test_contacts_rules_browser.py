"""In Chromium, by keyboard: the last incident contact rule, a refused Add that keeps
everything the admin chose and typed, and messages that don't outlive the next action."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from contacts.models import NotificationContact
from contacts.services import contact_add
from tenancy.models import ServicePhase
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def people(contoso):
    alice = factories.directory_user(contoso, "Alice Martin", mail="alice@contoso.example")
    bob = factories.directory_user(contoso, "Bob Stone", mail="bob@contoso.example")
    return {"alice": alice, "bob": bob}


def _url(live_server):
    return f"{live_server.url}/settings/defender-experts/notification-contacts/"


def _row(page, section, name):
    return page.get_by_test_id(f"section-{section}").locator(f'tr[data-contact-name="{name}"]')


def _incident(tenant, admin, user):
    return contact_add(tenant=tenant, acting_user=admin, notification_type="incident", directory_user_id=user.pk)


def _phase(tenant, phase):
    tenant.service_phase = phase
    tenant.save(update_fields=["service_phase"])


def _choose_by_keyboard(page, text):
    box = page.get_by_role("combobox", name="Contact person or team")
    box.focus()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.type(text, delay=20)
    expect(page.get_by_role("listbox").get_by_role("option").first).to_be_visible()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    return box


def test_during_monitoring_the_last_incident_contact_is_kept_with_a_way_forward(
    live_server, page, browser_login, axe_check, screenshot_dir, admin, contoso, people
):
    _incident(contoso, admin, people["alice"])
    _phase(contoso, ServicePhase.MONITORING)
    browser_login(admin)
    page.goto(_url(live_server))
    remove = page.get_by_role("button", name="Remove Alice Martin as incident contact")
    remove.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Alice Martin can't be removed yet")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("in the Monitoring phase our experts must always have someone to notify")
    expect(dialog.get_by_role("button", name="Remove", exact=True)).to_have_count(0)
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/contacts-remove-refused.png")
    # The way forward, by keyboard: the dialog's link to add another contact first.
    add_link = dialog.get_by_role("link", name="Add another incident contact")
    add_link.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(_url(live_server) + "?notification_type=incident#add-heading")
    expect(page.get_by_label("Notification type")).to_have_value("incident")
    _choose_by_keyboard(page, "bob")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(_row(page, "incident", "Bob Stone")).to_be_visible()
    # Now Alice's removal is an ordinary one.
    page.get_by_role("button", name="Remove Alice Martin as incident contact").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Remove Alice Martin?")
    dialog.get_by_role("button", name="Remove", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Alice Martin was removed as an incident contact.")).to_be_visible()
    assert list(NotificationContact.objects.active().values_list("display_name", flat=True)) == ["Bob Stone"]


def test_before_monitoring_the_confirmation_names_the_consequence(
    live_server, page, browser_login, axe_check, admin, contoso, people
):
    _incident(contoso, admin, people["alice"])
    _phase(contoso, ServicePhase.PREPARING)
    browser_login(admin)
    page.goto(_url(live_server))
    remove = page.get_by_role("button", name="Remove Alice Martin as incident contact")
    remove.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Remove Alice Martin?")
    expect(dialog.get_by_test_id("removal-consequence")).to_contain_text(
        "Alice Martin is your last incident contact who can receive notifications."
    )
    axe_check(page)
    # Escape keeps her, and focus returns to the button.
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(remove).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Remove Alice Martin?")
    dialog.get_by_role("button", name="Remove the last incident contact").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Alice Martin was removed as an incident contact.")).to_be_visible()
    expect(page.get_by_test_id("warning-no-incident")).to_be_visible()
    assert not NotificationContact.objects.active().exists()


def test_a_refused_add_keeps_every_choice_and_shows_the_error_once_by_its_field(
    live_server, page, browser_login, axe_check, screenshot_dir, admin, contoso, people
):
    browser_login(admin)
    page.goto(_url(live_server))
    box = _choose_by_keyboard(page, "alice")
    page.keyboard.press("Tab")  # Search
    page.keyboard.press("Tab")  # Notification type
    page.keyboard.press("Tab")  # Phone
    phone = page.get_by_label("Phone number (optional)")
    expect(phone).to_be_focused()
    page.keyboard.type("425 555 0142")  # no country code
    page.keyboard.press("Enter")
    error = page.get_by_test_id("phone-error")
    expect(error).to_contain_text("The phone number must be in international format.")
    expect(page.get_by_text("The phone number must be in international format.")).to_have_count(1)
    expect(page.locator(".toasts")).to_have_count(0)
    # Announced with the field: focus is on it, it is invalid, and described by the error.
    expect(phone).to_be_focused()
    expect(phone).to_have_attribute("aria-invalid", "true")
    assert error.get_attribute("id") in phone.get_attribute("aria-describedby").split()
    expect(error).to_have_attribute("role", "alert")
    # Everything the admin chose and typed is still there.
    expect(phone).to_have_value("425 555 0142")
    expect(box).to_have_value("Alice Martin")
    expect(page.get_by_text("Selected: Alice Martin (Person)")).to_be_visible()
    expect(page.get_by_label("Notification type")).to_have_value("incident")
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/contacts-add-phone-error.png", full_page=True)
    # Fixing the number is all it takes.
    page.keyboard.press("Control+a")
    page.keyboard.type("+1 425 555 0142")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Alice Martin was added as an incident contact.")).to_be_visible()
    expect(_row(page, "incident", "Alice Martin").get_by_label("Phone number for Alice Martin")).to_have_value(
        "+1 425 555 0142"
    )
    expect(page.get_by_test_id("phone-error")).to_have_count(0)


def test_an_already_a_contact_message_is_cleared_by_the_next_action(
    live_server, page, browser_login, axe_check, admin, contoso, people
):
    _incident(contoso, admin, people["alice"])
    _incident(contoso, admin, people["bob"])
    browser_login(admin)
    page.goto(_url(live_server))
    _choose_by_keyboard(page, "alice")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_test_id("entry-error")).to_have_text("Alice Martin is already an incident contact.")
    axe_check(page)
    # A later action succeeds in place: the earlier refusal no longer describes the page.
    page.get_by_role("button", name="Move Bob Stone up").focus()
    page.keyboard.press("Enter")
    expect(page.locator("[data-board-live]")).to_have_text("Bob Stone is now the primary contact.")
    expect(page.get_by_test_id("entry-error")).to_have_count(0)
    expect(page.get_by_text("Alice Martin is already an incident contact.")).to_have_count(0)
    box = page.get_by_role("combobox", name="Contact person or team")
    expect(box).not_to_have_attribute("aria-invalid", "true")
    axe_check(page)


def test_guide_contact_step_keeps_a_refused_add_and_drops_old_messages(
    live_server, page, browser_login, axe_check, screenshot_dir, sdm, admin, contoso, people
):
    from onboarding.models import GuideProgress
    from onboarding.services import guide_permissions_submit, invitation_send
    from permissions.selectors import access_levels_state

    invitation_send(tenant=contoso, acting_user=sdm)
    progress, _ = GuideProgress.objects.get_or_create(tenant=contoso)
    guide_permissions_submit(
        tenant=contoso,
        acting_user=admin,
        investigate=True,
        respond=False,
        expected_version=progress.version,
        permissions_version=access_levels_state(tenant=contoso).version,
        confirm_skip=True,
    )
    _incident(contoso, admin, people["alice"])
    step = f"{live_server.url}/settings/defender-experts/get-started/incident-contact/"
    browser_login(admin)
    page.goto(step)
    # Alice again, with a phone number: refused, on the step, with everything kept.
    box = _choose_by_keyboard(page, "alice")
    page.keyboard.press("Tab")  # Search
    page.keyboard.press("Tab")  # Phone
    page.keyboard.type("+44 20 7946 0958")
    page.keyboard.press("Enter")
    expect(page).to_have_url(step)
    error = page.get_by_test_id("entry-error")
    expect(error).to_have_text("Alice Martin is already an incident contact.")
    expect(page.get_by_text("Alice Martin is already an incident contact.")).to_have_count(1)
    expect(box).to_be_focused()
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Phone number (optional)")).to_have_value("+44 20 7946 0958")
    expect(page.get_by_text("Selected: Alice Martin (Person)")).to_be_visible()
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/contacts-guide-refused.png", full_page=True)
    # Bob instead: added, and the step says so at the top of the page.
    _choose_by_keyboard(page, "bob")
    page.get_by_role("button", name="Add", exact=True).click()
    toast = page.locator("main .toasts")
    expect(toast).to_contain_text("Bob Stone was added as an incident contact.")
    expect(page.get_by_test_id("contact-list")).to_contain_text("Bob Stone")
    expect(page.get_by_test_id("entry-error")).to_have_count(0)
    # Next moves on in place: the message about Bob no longer describes the page.
    page.get_by_role("button", name="Next").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Service review contact", exact=False).first).to_be_visible()
    expect(page).to_have_url(f"{live_server.url}/settings/defender-experts/get-started/service-review-contact/")
    expect(page.get_by_text("Bob Stone was added as an incident contact.")).to_have_count(0)
    axe_check(page)
