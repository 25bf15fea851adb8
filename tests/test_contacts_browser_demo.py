"""In Chromium, on the seeded demo (324 people, 29 teams, accented names), at 1280 px.

The other browser tests use a handful of hand-made entries; these check what a
new admin meets first: the real-sized directory, the page with several
contacts of both types, and the Get started guide's contact steps.
"""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from contacts.models import NotificationContact, NotificationType
from contacts.services import TEST_NOTIFICATION_LIMIT, contact_add
from demo.seed import seed_demo
from environment.models import DirectoryGroup, DirectoryUser
from tenancy.models import Tenant, User
from tests.conftest import complete_mfa

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

URL = "/settings/defender-experts/notification-contacts/"
STATUS = "[data-picker-status]"


@pytest.fixture
def demo(db):
    seed_demo(devices=20)
    contoso = Tenant.objects.get(primary_domain="contoso.example")
    assert DirectoryUser.objects.filter(tenant=contoso).count() == 324
    assert DirectoryGroup.objects.filter(tenant=contoso).count() == 29
    return contoso


def _sign_in(page, live_server, email: str) -> None:
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(settings.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    complete_mfa(page, User.objects.get(email=email), settings.DEMO_TOTP_SECRET)


def _people_named(tenant: Tenant, first: str) -> list[DirectoryUser]:
    """The directory's people whose first name is ``first`` (accents ignored), in the search's order."""
    # search_text is folded by the database: its first word is the first name, accents ignored.
    people = [u for u in DirectoryUser.objects.filter(tenant=tenant) if u.search_text.split()[0] == first]
    return sorted(people, key=lambda u: u.search_text.encode())


def test_accented_names_by_keyboard_with_what_a_screen_reader_hears(live_server, page, demo, axe_check, screenshot_dir):
    people = _people_named(demo, "jose")
    assert len(people) > 2 and all(p.display_name.startswith("José ") for p in people)
    _sign_in(page, live_server, "admin@contoso.example")
    page.goto(live_server.url + URL)
    box = page.get_by_role("combobox", name="Contact person or team")
    box.focus()
    # Typed without the accent, in capitals.
    page.keyboard.type("JOSE", delay=30)
    options = page.get_by_role("listbox").get_by_role("option")
    expect(options).to_have_count(len(people))
    expect(options).to_have_text([re.compile(re.escape(p.display_name)) for p in people])
    expect(box).to_have_attribute("aria-expanded", "true")
    expect(box).to_have_attribute("aria-controls", "picker-any-listbox")
    status = page.locator(STATUS)
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_have_text(
        f"{len(people)} results available. Use the up and down arrow keys to review them and Enter to choose."
    )
    page.screenshot(path=f"{screenshot_dir}/contacts-demo-typeahead.png")
    # Each arrow press moves aria-activedescendant to the option shown as active.
    for i in range(3):
        page.keyboard.press("ArrowDown")
        expect(box).to_have_attribute("aria-activedescendant", f"picker-any-opt-user-{people[i].pk}")
        expect(options.nth(i)).to_have_attribute("aria-selected", "true")
        expect(options.nth(i)).to_have_class(re.compile(r"\bis-active\b"))
    # A disabled person is announced as such and can't be chosen.
    disabled = next((i for i, p in enumerate(people) if not p.enabled), None)
    if disabled is not None:
        page.keyboard.press("Home")
        for _ in range(disabled):
            page.keyboard.press("ArrowDown")
        expect(options.nth(disabled)).to_have_attribute("aria-disabled", "true")
        page.keyboard.press("Enter")
        expect(status).to_have_text(f"{people[disabled].display_name} can't be added: this user is disabled.")
    chosen = next(p for p in people if p.enabled)
    page.keyboard.press("Home")
    for _ in range(people.index(chosen)):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(box).to_have_value(chosen.display_name)
    expect(box).not_to_have_attribute("aria-activedescendant", re.compile("."))
    expect(status).to_have_text(f"Selected {chosen.display_name}. Choose the notification type, then select Add.")
    expect(page.get_by_role("listbox")).to_be_hidden()
    axe_check(page)
    page.keyboard.press("Tab")  # Search
    page.keyboard.press("Tab")  # Notification type
    page.keyboard.press("Tab")  # Phone number
    expect(page.get_by_label("Phone number (optional)")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # Add
    expect(page.get_by_text(f"{chosen.display_name} was added as an incident contact.")).to_be_visible()
    assert NotificationContact.objects.get(directory_user=chosen).notification_type == NotificationType.INCIDENT


def test_accented_search_by_mouse_and_the_search_button_stays_in_place(
    live_server, page, demo, axe_check, screenshot_dir
):
    _sign_in(page, live_server, "admin@contoso.example")
    page.goto(live_server.url + URL)
    box = page.get_by_role("combobox", name="Contact person or team")
    # A common 2-letter search fills the list (10 best matches): still no
    # inner scrolling region that keyboard users couldn't scroll, axe-clean.
    box.press_sequentially("an", delay=30)
    expect(page.get_by_role("listbox").get_by_role("option")).to_have_count(10)
    expect(page.locator("#picker-any-results")).to_contain_text("the 10 best matches; type more to narrow them down")
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/contacts-demo-typeahead-10.png", full_page=True)
    # Letters without a decomposition (ı, ø, ł) are found from their plain forms too.
    for typed, shown in (("yilmaz", "Yılmaz"), ("soren", "Søren"), ("lukasz", "Łukasz")):
        box.fill(typed)
        expect(page.get_by_role("listbox").get_by_role("option").first).to_contain_text(shown)
    box.fill("zielinski")
    page.get_by_role("button", name="Search").click()
    # With JavaScript the Search button searches in place (no trip to the plain results page).
    expect(page).to_have_url(re.compile(re.escape(URL) + "$"))
    options = page.get_by_role("listbox").get_by_role("option")
    expect(options.first).to_contain_text("Zieliński")
    name = next(
        u.display_name
        for u in DirectoryUser.objects.filter(tenant=demo, enabled=True).order_by("search_text")
        if u.search_text.split("  ")[0].endswith(" zielinski")
    )
    page.get_by_role("option", name=name).click()
    expect(page.get_by_text(f"Selected: {name} (Person)")).to_be_visible()
    page.get_by_label("Notification type").select_option(label="Service review contact")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_text(f"{name} was added as a service review contact.")).to_be_visible()


def test_page_with_several_contacts_of_both_types_fits_1280px(live_server, page, demo, axe_check, screenshot_dir):
    admin = User.objects.get(email="admin@contoso.example")
    users = list(DirectoryUser.objects.filter(tenant=demo, enabled=True).order_by("search_text")[:4])
    teams = list(DirectoryGroup.objects.filter(tenant=demo, mail_enabled=True).order_by("display_name")[:3])
    for i, u in enumerate(users):
        contact_add(
            tenant=demo,
            acting_user=admin,
            notification_type="incident",
            directory_user_id=u.pk,
            phone="+33 1 42 68 53 00" if i == 0 else "",
        )
    contact_add(tenant=demo, acting_user=admin, notification_type="incident", directory_group_id=teams[0].pk)
    for t in teams:
        contact_add(tenant=demo, acting_user=admin, notification_type="service_review", directory_group_id=t.pk)
    contact_add(tenant=demo, acting_user=admin, notification_type="service_review", directory_user_id=users[0].pk)

    _sign_in(page, live_server, "admin@contoso.example")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + URL)
    expect(page.get_by_test_id("contact-row")).to_have_count(9)
    page.screenshot(path=f"{screenshot_dir}/contacts-demo-page-1280.png", full_page=True)
    # Nothing scrolls sideways, and every row's actions are on screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    for wrap in page.locator(".table-wrap").all():
        assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth"), "a contacts table scrolls sideways at 1280 px"
    for button in page.get_by_role("button", name=re.compile("^(Send test notification|Remove) ")).all():
        box = button.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280
    axe_check(page)

    # Send test notification: the limit, then a message that says when the next one is allowed.
    send = page.get_by_role("button", name=f"Send test notification to {teams[1].display_name}").first
    live = page.locator("[data-board-live]")
    for _ in range(TEST_NOTIFICATION_LIMIT):
        live.evaluate("el => { el.textContent = ''; }")
        send.click()
        # The board is redrawn in place and the result announced.
        expect(live).to_have_text(f"A test notification is on its way to {teams[1].mail}.")
    send.click()
    refusal = page.locator("#contacts-board").get_by_text(
        re.compile(
            f"{re.escape(teams[1].display_name)} has already been sent {TEST_NOTIFICATION_LIMIT} test notifications"
            r" in the last 10 minutes, the most we allow for one contact\. You can send another in 10 minutes,"
            r" at \d\d:\d\d UTC\."
        )
    )
    expect(refusal).to_be_visible()
    page.screenshot(path=f"{screenshot_dir}/contacts-demo-rate-limited.png")


def test_guide_contact_steps_use_the_picker_by_keyboard(live_server, page, demo, axe_check, screenshot_dir):
    from onboarding.models import GuideProgress
    from onboarding.services import guide_permissions_submit
    from permissions.selectors import access_levels_state

    admin = User.objects.get(email="admin@contoso.example")
    progress, _ = GuideProgress.objects.get_or_create(tenant=demo)
    guide_permissions_submit(
        tenant=demo,
        acting_user=admin,
        investigate=True,
        respond=False,
        expected_version=progress.version,
        permissions_version=access_levels_state(tenant=demo).version,
        confirm_skip=True,
    )
    people = [p for p in _people_named(demo, "andres") if p.enabled]
    _sign_in(page, live_server, "admin@contoso.example")
    page.goto(f"{live_server.url}/settings/defender-experts/get-started/incident-contact/")
    box = page.get_by_role("combobox", name="Contact person or team")
    box.focus()
    page.keyboard.type("andres", delay=30)
    listbox = page.get_by_role("listbox")
    expect(listbox.get_by_role("option").first).to_contain_text("Andrés")
    # In the guide's narrower column the list is wide enough for the addresses.
    assert listbox.bounding_box()["width"] >= 400
    page.screenshot(path=f"{screenshot_dir}/contacts-guide-typeahead.png", full_page=True)
    index = [o.get_attribute("data-name") for o in listbox.get_by_role("option").all()].index(people[0].display_name)
    for _ in range(index + 1):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator(STATUS)).to_have_text(f"Selected {people[0].display_name}. Select Add to add them.")
    # Tabbing on never leaves the list covering the fields below it.
    page.keyboard.press("Tab")  # Search
    expect(listbox).to_be_hidden()
    page.keyboard.press("Tab")
    phone = page.get_by_label("Phone number (optional)")
    expect(phone).to_be_focused()
    page.keyboard.type("+44 20 7946 0958")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Add", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/get-started/incident-contact/(#[\w-]*)?$"))
    expect(page.get_by_test_id("contact-list")).to_contain_text(people[0].display_name)
    contact = NotificationContact.objects.get(directory_user=people[0])
    assert (contact.notification_type, contact.phone) == ("incident", "+442079460958")
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/contacts-guide-incident-step.png", full_page=True)
    # Adding the same person again from the guide explains why, on the guide.
    box = page.get_by_role("combobox", name="Contact person or team")
    box.focus()
    page.keyboard.type(people[0].display_name, delay=10)
    expect(page.get_by_role("option", name=people[0].display_name)).to_contain_text("Already an incident contact")
    page.get_by_role("option", name=people[0].display_name).click()
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_text(f"{people[0].display_name} is already an incident contact.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/get-started/incident-contact/(#[\w-]*)?$"))
