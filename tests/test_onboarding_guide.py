"""The Get started guide over HTTP: steps, roles, conflicts, resuming, finishing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from contacts.models import NotificationContact, NotificationType
from contacts.services import contact_add
from onboarding.models import GuideProgress, GuideStep
from onboarding.selectors import guide_progress
from onboarding.services import invitation_send
from permissions.selectors import access_levels_state
from tenancy.models import ServicePhase
from tests import factories

pytestmark = pytest.mark.django_db

PERMISSIONS = reverse("onboarding:step", args=["permissions"])
INCIDENT = reverse("onboarding:step", args=["incident-contact"])
REVIEW = reverse("onboarding:step", args=["service-review-contact"])
NEXT_STEPS = reverse("onboarding:step", args=["next-steps"])
# The address of the former separate Close step (Close is now on Next steps); kept so old links still work.
FORMER_CLOSE = reverse("onboarding:step", args=["close"])
SEED_SKIP = (
    "If you skip providing additional permissions, our experts won&#x27;t be able to take certain response "
    "actions to secure your organization."
)
SEED_NOTE = "Given the urgent nature of the communications, it is recommended to have someone available at all times."


@pytest.fixture
def invited(contoso, sdm, admin):
    invitation_send(tenant=contoso, acting_user=sdm)
    contoso.refresh_from_db()
    return contoso


def version(tenant) -> int:
    return guide_progress(tenant=tenant).version


def perm_version(tenant) -> int:
    return access_levels_state(tenant=tenant).version


def submit_permissions(client, tenant, *, investigate=True, respond=True, confirm_skip=False, **extra):
    data = {"version": version(tenant), "permissions_version": perm_version(tenant), **extra}
    if investigate:
        data["investigate"] = "on"
    if respond:
        data["respond"] = "on"
    if confirm_skip:
        data["confirm_skip"] = "1"
    return client.post(PERMISSIONS, data)


def add_contact(tenant, user, notification_type, name="Alex Wilber"):
    person = factories.directory_user(tenant, name)
    return contact_add(
        tenant=tenant, acting_user=user, notification_type=notification_type, directory_user_id=person.pk
    )


def through_contacts(client, tenant, user):
    assert submit_permissions(client, tenant).status_code == 302
    add_contact(tenant, user, NotificationType.INCIDENT)
    assert client.post(INCIDENT, {"version": version(tenant)}).status_code == 302
    add_contact(tenant, user, NotificationType.SERVICE_REVIEW, "Megan Bowen")
    assert client.post(REVIEW, {"version": version(tenant)}).status_code == 302


# --- Opening the guide ------------------------------------------------------------


def test_landing_page_shows_get_started(login, invited, admin):
    html = login(admin).get(reverse("onboarding:index")).content.decode()
    assert "Get started" in html
    assert reverse("onboarding:get_started") in html
    for name in ("permissions:index", "contacts:index", "readiness:service_status"):
        assert reverse(name) in html


def test_landing_page_before_the_invitation_and_for_viewers(login, contoso, sdm, admin, reader):
    client = login(admin)
    html = client.get(reverse("onboarding:index")).content.decode()
    # Not invited yet: the seed's sentence, and no button into a guide that isn't open.
    assert "you'll receive a welcome email to continue the setup" in html
    assert 'data-testid="open-guide"' not in html
    invitation_send(tenant=contoso, acting_user=sdm)
    html = client.get(reverse("onboarding:index")).content.decode()
    assert 'data-testid="open-guide">Get started</a>' in html
    client.get(reverse("onboarding:get_started"))
    assert 'data-testid="open-guide">Continue</a>' in client.get(reverse("onboarding:index")).content.decode()
    viewer = login(reader).get(reverse("onboarding:index")).content.decode()
    assert 'data-testid="open-guide">View the guide</a>' in viewer
    assert "A Global Administrator or a Security Administrator completes it" in viewer


def test_admin_opening_the_guide_moves_invited_to_setting_up_once(login, invited, admin):
    client = login(admin)
    response = client.get(reverse("onboarding:get_started"))
    assert response.status_code == 302 and response["Location"] == PERMISSIONS
    invited.refresh_from_db()
    assert invited.service_phase == ServicePhase.SETTING_UP
    event = AuditEvent.objects.get(tenant=invited, action="tenant.phase_changed", after__service_phase="setting_up")
    assert event.actor == admin
    client.get(reverse("onboarding:get_started"))
    assert AuditEvent.objects.filter(tenant=invited, after__service_phase="setting_up").count() == 1


def test_a_reader_opening_the_guide_does_not_move_the_phase(login, invited, reader):
    client = login(reader)
    response = client.get(PERMISSIONS)
    assert response.status_code == 200
    invited.refresh_from_db()
    assert invited.service_phase == ServicePhase.INVITED


def test_the_guide_waits_for_the_invitation(login, contoso, admin):
    client = login(admin)
    response = client.get(reverse("onboarding:get_started"))
    assert response.status_code == 200
    assert b"welcome email" in response.content
    response = client.post(PERMISSIONS, {"version": 0, "permissions_version": 1, "investigate": "on"})
    assert b"welcome email" in response.content
    assert not GuideProgress.objects.exists()
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.NOT_INVITED


def test_unknown_step_is_a_404(login, invited, admin):
    assert login(admin).get("/settings/defender-experts/get-started/nope/").status_code == 404


# --- Step 1: Permissions -----------------------------------------------------------


def test_permissions_step_uses_the_seed_words(login, invited, admin):
    html = login(admin).get(PERMISSIONS).content.decode()
    assert "Service provider access" in html
    assert "Investigate incidents and guide my responses" in html
    assert "Access level: Security Reader" in html
    assert "Respond directly to active threats" in html
    assert "Access level: Security Operator" in html
    assert "Default" in html and "Recommended" in html
    for label in ("Permissions", "Incident contact", "Service review contact", "Next steps"):
        assert label in html
    # The seed's Close is Next steps' button, not a step of the stepper.
    assert 'data-testid="step-next-steps"' in html and 'data-testid="step-close"' not in html


def test_granting_both_levels_saves_through_the_permissions_service_and_moves_on(login, invited, admin):
    client = login(admin)
    client.get(PERMISSIONS)
    response = submit_permissions(client, invited)
    assert response.status_code == 302 and response["Location"] == INCIDENT
    state = access_levels_state(tenant=invited)
    assert state.investigate and state.respond and state.provider_access_granted
    progress = guide_progress(tenant=invited)
    assert progress.current_step == GuideStep.INCIDENT_CONTACT
    assert progress.completed_steps == ["permissions"]
    assert AuditEvent.objects.filter(tenant=invited, action="onboarding.guide_step_completed").count() == 1
    # The grant made through the guide is audited with the admin's address, as on the Permissions page.
    grants = AuditEvent.objects.filter(tenant=invited, action__startswith="permissions.")
    assert grants.exists() and {e.ip_address for e in grants} == {"127.0.0.1"}


def test_going_on_without_respond_shows_the_important_warning_and_saves_nothing(login, invited, admin):
    client = login(admin)
    client.get(PERMISSIONS)
    before = version(invited)
    response = submit_permissions(client, invited, respond=False)
    assert response.status_code == 200
    html = response.content.decode()
    assert SEED_SKIP in html
    assert 'data-testid="skip-warning"' in html
    assert "Continue without additional permissions" in html
    assert version(invited) == before
    assert not access_levels_state(tenant=invited).investigate

    response = submit_permissions(client, invited, respond=False, confirm_skip=True)
    assert response.status_code == 302 and response["Location"] == INCIDENT
    state = access_levels_state(tenant=invited)
    assert state.investigate and not state.respond


def test_choosing_no_level_at_all_is_refused(login, invited, admin):
    client = login(admin)
    client.get(PERMISSIONS)
    response = submit_permissions(client, invited, investigate=False, respond=False, confirm_skip=True)
    assert response.status_code == 400
    assert b"Choose at least one access level" in response.content
    assert guide_progress(tenant=invited).current_step == GuideStep.PERMISSIONS


def test_respond_needs_a_recent_sign_in_and_the_choice_survives_the_prompt(login, invited, admin):
    client = login(admin)
    client.get(PERMISSIONS)
    session = client.session
    session["auth_time"] = 0  # signed in long ago
    session.save()
    response = submit_permissions(client, invited)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("confirm_password") + "?next=")
    assert not access_levels_state(tenant=invited).respond
    assert guide_progress(tenant=invited).current_step == GuideStep.PERMISSIONS

    from urllib.parse import parse_qs, urlparse

    back = parse_qs(urlparse(response["Location"]).query)["next"][0]
    assert back.startswith(PERMISSIONS)
    # Where the prompt's Cancel leads: the step with the admin's choice, nothing saved.
    html = client.get(back).content.decode()
    assert 'id="level-respond" name="respond" checked' in html
    assert not access_levels_state(tenant=invited).respond
    from tests.factories import PASSWORD, totp_code

    # The admin has a second factor, so the prompt asks for its code too. Confirming completes the step.
    confirmed = client.post(reverse("confirm_password"), {"password": PASSWORD, "code": totp_code(), "next": back})
    assert confirmed["Location"] == INCIDENT
    assert access_levels_state(tenant=invited).respond
    assert guide_progress(tenant=invited).current_step == GuideStep.INCIDENT_CONTACT


def test_a_stale_permissions_form_gets_a_conflict_message(login, invited, admin):
    client = login(admin)
    client.get(PERMISSIONS)
    data = {
        "version": version(invited),
        "permissions_version": perm_version(invited) + 5,
        "investigate": "on",
        "respond": "on",
    }
    response = client.post(PERMISSIONS, data)
    assert response.status_code == 409
    assert b'data-testid="conflict"' in response.content
    assert b"Someone else changed these permissions" in response.content
    assert guide_progress(tenant=invited).current_step == GuideStep.PERMISSIONS


def test_two_admins_in_parallel_the_second_gets_a_conflict_and_sees_the_current_state(client, invited, admin, secadmin):
    from django.test import Client

    first, second = Client(), Client()
    first.force_login(admin)
    second.force_login(secadmin)
    first.get(PERMISSIONS)
    second.get(PERMISSIONS)
    # Both loaded the same versions; the first one's Next wins.
    loaded = {"version": version(invited), "permissions_version": perm_version(invited)}
    assert first.post(PERMISSIONS, {**loaded, "investigate": "on", "respond": "on"}).status_code == 302
    response = second.post(PERMISSIONS, {**loaded, "investigate": "on", "confirm_skip": "1"})
    assert response.status_code == 409
    html = response.content.decode()
    assert 'data-testid="conflict"' in html
    # The current state is shown: Respond stays granted, as the first admin chose.
    assert 'id="level-respond" name="respond" checked' in html
    assert access_levels_state(tenant=invited).respond
    assert guide_progress(tenant=invited).updated_by == admin

    # The second admin sees the same progress, not a blank guide.
    resumed = second.get(reverse("onboarding:get_started"))
    assert resumed["Location"] == INCIDENT


def test_a_double_submitted_step_moves_on_once(login, invited, admin):
    client = login(admin)
    client.get(PERMISSIONS)
    loaded = {"version": version(invited), "permissions_version": perm_version(invited)}
    both = {**loaded, "investigate": "on", "respond": "on"}
    assert client.post(PERMISSIONS, both)["Location"] == INCIDENT
    # The same form again (a double-click): already saved, so it just moves on.
    assert client.post(PERMISSIONS, both)["Location"] == INCIDENT
    # The same admin's stale form asking for something else is a real conflict.
    response = client.post(PERMISSIONS, {**loaded, "investigate": "on", "confirm_skip": "1"})
    assert b'data-testid="conflict"' in response.content
    assert access_levels_state(tenant=invited).respond
    add_contact(invited, admin, NotificationType.INCIDENT)
    form = {"version": version(invited)}
    assert client.post(INCIDENT, form)["Location"] == REVIEW
    second = client.post(INCIDENT, form, headers={"HX-Request": "true"})
    assert second.status_code == 200 and second["HX-Push-Url"] == REVIEW
    assert b'data-testid="conflict"' not in second.content
    steps = AuditEvent.objects.filter(tenant=invited, action="onboarding.guide_step_completed")
    assert steps.count() == 2  # Permissions and Incident contact, once each


def test_a_double_submitted_close_finishes_once(login, invited, admin):
    client = login(admin)
    client.get(reverse("onboarding:get_started"))
    through_contacts(client, invited, admin)
    form = {"version": version(invited)}
    status = reverse("readiness:service_status")
    assert client.post(NEXT_STEPS, form)["Location"] == status
    assert client.post(NEXT_STEPS, form)["Location"] == status
    assert client.post(NEXT_STEPS, form, headers={"HX-Request": "true"})["HX-Redirect"] == status
    assert AuditEvent.objects.filter(tenant=invited, action="onboarding.guide_finished").count() == 1
    assert not AuditEvent.objects.filter(tenant=invited, action="onboarding.guide_closed").exists()


def test_a_malformed_version_is_a_conflict_not_a_500(login, invited, admin):
    client = login(admin)
    client.get(PERMISSIONS)
    response = client.post(PERMISSIONS, {"version": "abc", "permissions_version": "x", "investigate": "on"})
    assert response.status_code == 409
    assert b'data-testid="conflict"' in response.content


# --- Steps 2 and 3: contacts ---------------------------------------------------------


def test_incident_contact_step_shows_the_note_the_picker_and_the_added_contacts(login, invited, admin):
    client = login(admin)
    submit_permissions(client, invited)
    add_contact(invited, admin, NotificationType.INCIDENT, "Adele Vance")
    add_contact(invited, admin, NotificationType.SERVICE_REVIEW, "Not Shown Here")
    html = client.get(INCIDENT).content.decode()
    assert SEED_NOTE in html
    assert "Adele Vance" in html and "Not Shown Here" not in html
    # The picker searches the directory and adds through the step itself.
    assert reverse("contacts:search") in html
    assert f'action="{INCIDENT}" data-picker-form>' in html and 'name="add_contact" value="1"' in html
    assert f'name="next" value="{INCIDENT}#added-heading"' in html


def test_adding_from_the_step_returns_to_its_list(login, invited, admin):
    client = login(admin)
    submit_permissions(client, invited)
    person = factories.directory_user(invited, "Lynne Robbins")
    response = client.post(INCIDENT, {"add_contact": "1", "entry": f"user:{person.pk}", "phone": "+1 425-555-0142"})
    assert response.status_code == 302 and response["Location"] == INCIDENT + "#added-heading"
    contact = NotificationContact.objects.get(tenant=invited, directory_user=person)
    # The step's type, whatever the form says; the phone in E.164, shown one way.
    assert (contact.notification_type, contact.phone) == ("incident", "+14255550142")
    html = client.get(INCIDENT).content.decode()
    assert "Lynne Robbins was added as an incident contact." in html and "+1 425 555 0142" in html
    # Adding does not move the guide on: Next does.
    assert guide_progress(tenant=invited).current_step == GuideStep.INCIDENT_CONTACT


def test_a_refused_add_on_the_step_keeps_everything_and_shows_the_error_once(login, invited, admin):
    client = login(admin)
    submit_permissions(client, invited)
    person = factories.directory_user(invited, "Lynne Robbins")
    add_contact(invited, admin, NotificationType.INCIDENT, "Lynne Robbins")
    existing = NotificationContact.objects.get(tenant=invited, display_name="Lynne Robbins")
    entry = f"user:{existing.directory_user_id}"
    response = client.post(INCIDENT, {"add_contact": "1", "entry": entry, "q": "lynne", "phone": "+44 20 7946 0958"})
    html = response.content.decode()
    assert response.status_code == 400
    assert html.count("Lynne Robbins is already an incident contact.") == 1
    assert 'id="picker-incident-entry-error" role="alert"' in html
    assert 'aria-describedby="picker-incident-help picker-incident-entry-error" aria-invalid="true"' in html
    assert f'name="entry" value="{entry}"' in html and 'value="+44 20 7946 0958"' in html and 'value="lynne"' in html
    assert "Selected: Lynne Robbins (Person)" in html
    # A bad phone number: next to the phone field, the choice kept.
    response = client.post(INCIDENT, {"add_contact": "1", "entry": f"user:{person.pk}", "phone": "0142"})
    html = response.content.decode()
    assert response.status_code == 400
    assert html.count("The phone number must be in international format.") == 1
    assert 'id="picker-incident-phone-error" role="alert"' in html
    assert f'name="entry" value="user:{person.pk}"' in html and 'value="0142"' in html
    assert NotificationContact.objects.filter(tenant=invited).count() == 1


def test_readers_cannot_add_from_the_step_and_other_tenants_entries_are_not_found(
    login, invited, admin, reader, outsider
):
    client = login(admin)
    submit_permissions(client, invited)
    person = factories.directory_user(invited, "Lynne Robbins")
    assert login(reader).post(INCIDENT, {"add_contact": "1", "entry": f"user:{person.pk}"}).status_code == 403
    stranger = factories.directory_user(factories.tenant("Elsewhere"), "Someone Else")
    response = login(admin).post(INCIDENT, {"add_contact": "1", "entry": f"user:{stranger.pk}"})
    assert response.status_code == 400 and "isn&#x27;t in your directory" in response.content.decode()
    assert not NotificationContact.objects.exists()


def test_next_without_a_contact_asks_for_one(login, invited, admin):
    client = login(admin)
    submit_permissions(client, invited)
    response = client.post(INCIDENT, {"version": version(invited)})
    assert response.status_code == 400
    assert b"Add an incident contact" in response.content
    assert guide_progress(tenant=invited).current_step == GuideStep.INCIDENT_CONTACT


def test_the_contacts_add_view_returns_to_the_step(login, invited, admin):
    client = login(admin)
    submit_permissions(client, invited)
    person = factories.directory_user(invited, "Lynne Robbins")
    response = client.post(
        reverse("contacts:add"),
        {"notification_type": "incident", "entry": f"user:{person.pk}", "next": INCIDENT + "#added-heading"},
    )
    assert response.status_code == 302 and response["Location"] == INCIDENT + "#added-heading"
    # The step hands the picker that "next", so the admin lands back at the contact list.
    assert f'name="next" value="{INCIDENT}#added-heading"' in client.get(INCIDENT).content.decode()
    assert "Lynne Robbins" in client.get(INCIDENT).content.decode()
    assert client.post(INCIDENT, {"version": version(invited)})["Location"] == REVIEW


def test_service_review_step(login, invited, admin):
    client = login(admin)
    submit_permissions(client, invited)
    add_contact(invited, admin, NotificationType.INCIDENT)
    client.post(INCIDENT, {"version": version(invited)})
    html = client.get(REVIEW).content.decode()
    assert "ongoing security briefings done by our service delivery team" in html
    assert SEED_NOTE not in html
    response = client.post(REVIEW, {"version": version(invited)})
    assert b"Add a service review contact" in response.content
    add_contact(invited, admin, NotificationType.SERVICE_REVIEW)
    assert client.post(REVIEW, {"version": version(invited)})["Location"] == NEXT_STEPS


# --- Steps 4 and 5, finishing, reopening ----------------------------------------------


def test_next_steps_tells_about_service_status_and_24_hours(login, invited, admin):
    client = login(admin)
    through_contacts(client, invited, admin)
    html = client.get(NEXT_STEPS).content.decode()
    assert "readiness assessment" in html
    assert "It can take up to 24 hours to get the latest status of your security settings." in html
    assert reverse("readiness:service_status") in html
    assert "Service status" in html


def test_close_finishes_the_guide_and_moves_the_tenant_to_preparing(login, invited, admin):
    client = login(admin)
    client.get(reverse("onboarding:get_started"))
    through_contacts(client, invited, admin)
    html = client.get(NEXT_STEPS).content.decode()
    # Next steps carries the summary and Close (the seed: "Select Close to exit the settings step-by-step guide").
    assert "Alex Wilber" in html and "Megan Bowen" in html
    assert '<button type="submit" class="btn btn--primary">Close</button>' in html
    assert '<button type="submit" class="btn btn--primary">Next</button>' not in html
    response = client.post(NEXT_STEPS, {"version": version(invited)})
    assert response.status_code == 302 and response["Location"] == reverse("readiness:service_status")
    invited.refresh_from_db()
    assert invited.service_phase == ServicePhase.PREPARING
    progress = guide_progress(tenant=invited)
    assert progress.finished_by == admin and progress.finished_at is not None
    assert AuditEvent.objects.filter(tenant=invited, action="onboarding.guide_finished", actor=admin).exists()
    assert AuditEvent.objects.filter(tenant=invited, after__service_phase="preparing", actor=admin).exists()


def finish(client, tenant, user):
    client.get(reverse("onboarding:get_started"))
    through_contacts(client, tenant, user)
    client.post(NEXT_STEPS, {"version": version(tenant)})


def test_reopening_a_finished_guide_shows_current_settings_and_never_resets(login, invited, admin, secadmin):
    client = login(admin)
    finish(client, invited, admin)
    finished_at = guide_progress(tenant=invited).finished_at

    client.force_login(secadmin)
    response = client.get(reverse("onboarding:get_started"))
    assert response["Location"] == PERMISSIONS
    html = client.get(PERMISSIONS).content.decode()
    assert 'id="level-respond" name="respond" checked' in html
    assert "finished this guide" in html
    assert html.count('data-state="done"') == 3  # every other required step stays done
    # Every step is reachable, and changing a setting keeps the guide finished.
    assert client.get(NEXT_STEPS).status_code == 200
    response = submit_permissions(client, invited, respond=False, confirm_skip=True)
    assert response.status_code == 302
    progress = guide_progress(tenant=invited)
    assert progress.finished_at == finished_at and progress.finished_by == admin
    assert progress.completed_steps == ["permissions", "incident-contact", "service-review-contact", "next-steps"]
    assert not access_levels_state(tenant=invited).respond
    # Going through a finished guide again records nothing new unless a setting changed.
    steps_before = AuditEvent.objects.filter(action="onboarding.guide_step_completed").count()
    assert client.post(INCIDENT, {"version": version(invited)})["Location"] == REVIEW
    assert client.post(REVIEW, {"version": version(invited)})["Location"] == NEXT_STEPS
    assert AuditEvent.objects.filter(action="onboarding.guide_step_completed").count() == steps_before
    # Closing again keeps the original record and the phase.
    client.post(NEXT_STEPS, {"version": version(invited)})
    invited.refresh_from_db()
    assert invited.service_phase == ServicePhase.PREPARING
    assert guide_progress(tenant=invited).finished_by == admin


# --- Resuming and navigation ----------------------------------------------------------


def test_resume_where_the_tenant_left_off(login, invited, admin, secadmin):
    client = login(admin)
    submit_permissions(client, invited)
    add_contact(invited, admin, NotificationType.INCIDENT)
    client.post(INCIDENT, {"version": version(invited)})
    client.logout()  # "closes the browser"
    client.force_login(admin)
    assert client.get(reverse("onboarding:get_started"))["Location"] == REVIEW
    client.force_login(secadmin)
    assert client.get(reverse("onboarding:get_started"))["Location"] == REVIEW
    html = client.get(REVIEW).content.decode()
    assert html.count('data-state="done"') == 2
    assert 'data-testid="step-service-review-contact" data-state="current"' in html
    index = client.get(reverse("onboarding:index")).content.decode()
    # The stepper counts the optional Exclusions step too (step 2).
    assert "step 4 of 5" in index


def test_steps_ahead_of_the_tenant_redirect_to_the_current_step(login, invited, admin):
    client = login(admin)
    response = client.get(NEXT_STEPS)
    assert response.status_code == 302 and response["Location"] == PERMISSIONS
    response = client.post(NEXT_STEPS, {"version": version(invited)})
    assert response.status_code == 400
    assert b"Complete Permissions first" in response.content
    invited.refresh_from_db()
    assert invited.service_phase == ServicePhase.SETTING_UP


def test_back_goes_to_the_previous_step_without_losing_progress(login, invited, admin):
    client = login(admin)
    submit_permissions(client, invited)
    html = client.get(INCIDENT).content.decode()
    assert f'href="{PERMISSIONS}"' in html  # Back
    back = client.get(PERMISSIONS).content.decode()
    assert 'data-testid="step-permissions" data-state="current"' in back
    assert guide_progress(tenant=invited).current_step == GuideStep.INCIDENT_CONTACT


# --- htmx ---------------------------------------------------------------------------------


def test_htmx_next_swaps_in_the_next_step_and_pushes_its_url(login, invited, admin):
    client = login(admin)
    client.get(PERMISSIONS)
    data = {
        "version": version(invited),
        "permissions_version": perm_version(invited),
        "investigate": "on",
        "respond": "on",
    }
    response = client.post(PERMISSIONS, data, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Push-Url"] == INCIDENT
    html = response.content.decode()
    assert html.lstrip().startswith("<title>Incident contact · Get started")
    assert '<div id="guide"' in html
    assert "<html" not in html
    assert SEED_NOTE in html
    assert "HX-Request" in response["Vary"]


def test_htmx_get_is_a_fragment_and_history_restore_a_full_page(login, invited, admin):
    client = login(admin)
    client.get(PERMISSIONS)
    fragment = client.get(PERMISSIONS, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in fragment and 'id="guide"' in fragment
    full = client.get(PERMISSIONS, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert b"<html" in full.content


def test_htmx_close_redirects_the_whole_page_to_service_status(login, invited, admin):
    client = login(admin)
    client.get(reverse("onboarding:get_started"))
    through_contacts(client, invited, admin)
    response = client.post(NEXT_STEPS, {"version": version(invited)}, headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == reverse("readiness:service_status")


# --- Roles ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role_fixture", ["reader", "operator"])
def test_readers_and_operators_see_the_guide_read_only_and_get_403_on_submit(
    request, login, invited, admin, role_fixture
):
    user = request.getfixturevalue(role_fixture)
    client = login(user)
    html = client.get(PERMISSIONS).content.decode()
    assert "Only a Global Administrator or a Security Administrator can complete this guide." in html
    # Nothing is granted yet: a viewer sees that, not the admin's pre-ticked default.
    assert 'id="level-investigate" name="investigate" disabled' in html
    assert 'id="level-respond" name="respond" disabled' in html
    assert "No access level has been granted yet." in html
    assert '<button type="submit" class="btn btn--primary">Next</button>' not in html
    for url in (PERMISSIONS, INCIDENT, REVIEW, NEXT_STEPS, FORMER_CLOSE):
        response = client.post(url, {"version": 0, "permissions_version": 1, "investigate": "on", "respond": "on"})
        assert response.status_code == 403, url
    assert not access_levels_state(tenant=invited).investigate
    assert not GuideProgress.objects.filter(tenant=invited).exists()
    # Viewers may look at every step, read-only, with Back and Next as links.
    review = client.get(REVIEW).content.decode()
    assert f'href="{NEXT_STEPS}"' in review
    nxt = client.get(NEXT_STEPS)
    assert nxt.status_code == 200
    assert b"Only a Global Administrator or a Security Administrator can complete this guide." in nxt.content
    close = nxt.content.decode()
    assert '<button type="submit" class="btn btn--primary">Close</button>' not in close
    assert reverse("readiness:service_status") in close


def test_a_member_of_another_tenant_sees_only_their_own_guide(login, invited, admin, outsider, fabrikam):
    client = login(admin)
    submit_permissions(client, invited)
    other = login(outsider)
    response = other.get(reverse("onboarding:get_started"))
    # Fabrikam was never invited: its own "not ready yet" page, nothing of Contoso.
    assert b"Contoso" not in response.content
    assert b"welcome email" in response.content


def remove_access(tenant, user):
    from permissions.services import provider_access_remove

    provider_access_remove(tenant=tenant, acting_user=user, expected_version=perm_version(tenant))


def test_removed_provider_access_is_explained_and_nothing_moves(login, invited, admin):
    client = login(admin)
    form_version = perm_version(invited)
    submit_permissions(client, invited)
    remove_access(invited, admin)
    html = client.get(PERMISSIONS).content.decode()
    assert 'data-testid="access-removed"' in html
    assert "Service provider access was removed by" in html
    # What is granted (nothing), not a pre-ticked default, and a button that says what it does.
    assert 'id="level-investigate" name="investigate" aria-describedby' in html
    assert 'name="restore" value="1"' in html
    assert ">Restore access and continue</button>" in html
    before = version(invited)
    # A form rendered before the removal (no "restore") never undoes it: a conflict, nothing moves.
    response = client.post(
        PERMISSIONS,
        {"version": before, "permissions_version": form_version, "investigate": "on", "respond": "on"},
    )
    assert response.status_code == 409
    assert b'data-testid="conflict"' in response.content
    assert version(invited) == before
    assert access_levels_state(tenant=invited).removed


def test_an_admin_can_restore_removed_access_from_the_guide(login, invited, admin):
    client = login(admin)
    submit_permissions(client, invited)
    remove_access(invited, admin)
    # Restoring without Respond still asks about the seed's IMPORTANT warning first.
    response = submit_permissions(client, invited, respond=False, restore="1")
    assert b'data-testid="skip-warning"' in response.content
    assert access_levels_state(tenant=invited).removed
    response = submit_permissions(client, invited, respond=False, confirm_skip=True, restore="1")
    assert response.status_code == 302 and response["Location"] == INCIDENT
    state = access_levels_state(tenant=invited)
    assert state.provider_access_granted and state.investigate and not state.respond
    # Through the Permissions service's own restore, audited as such.
    assert AuditEvent.objects.filter(
        tenant=invited, action="permissions.provider_access_restored", actor=admin
    ).exists()
    assert "Service provider access restored" in client.get(INCIDENT).content.decode()


def test_a_restore_form_is_stale_once_someone_else_restored_access(login, invited, admin, secadmin):
    from permissions.services import provider_access_restore

    client = login(admin)
    submit_permissions(client, invited)
    remove_access(invited, admin)
    stale = perm_version(invited)
    provider_access_restore(
        tenant=invited, acting_user=secadmin, expected_version=stale, investigate=True, respond=False
    )
    before = version(invited)
    response = client.post(
        PERMISSIONS,
        {"version": before, "permissions_version": stale, "investigate": "on", "restore": "1", "confirm_skip": "1"},
    )
    assert b'data-testid="conflict"' in response.content
    assert version(invited) == before


def test_the_first_close_waits_for_removed_access_to_be_restored(login, invited, admin):
    client = login(admin)
    client.get(reverse("onboarding:get_started"))
    through_contacts(client, invited, admin)
    remove_access(invited, admin)
    response = client.post(NEXT_STEPS, {"version": version(invited)})
    assert response.status_code == 400
    assert b'data-testid="step-error"' in response.content
    assert b"Restore it in Permissions (step 1), then select Close." in response.content
    invited.refresh_from_db()
    assert invited.service_phase == ServicePhase.SETTING_UP
    assert not guide_progress(tenant=invited).is_finished
    # Restored from the guide's Permissions step, the guide stays at Next steps and its Close finishes.
    restored = submit_permissions(client, invited, respond=False, confirm_skip=True, restore="1")
    assert restored.status_code == 302
    assert client.get(reverse("onboarding:get_started"))["Location"] == NEXT_STEPS
    assert client.post(NEXT_STEPS, {"version": version(invited)})["Location"] == reverse("readiness:service_status")
    invited.refresh_from_db()
    assert invited.service_phase == ServicePhase.PREPARING


def test_a_finished_guide_without_contacts_says_so_on_close(login, invited, admin):
    from contacts.models import NotificationContact

    client = login(admin)
    finish(client, invited, admin)
    assert "You've set up Defender Experts for XDR" in client.get(NEXT_STEPS).content.decode()
    NotificationContact.objects.filter(tenant=invited, notification_type=NotificationType.INCIDENT).delete()
    html = client.get(NEXT_STEPS).content.decode()
    assert 'data-testid="contacts-missing"' in html and "No incident contact" in html
    assert f'href="{INCIDENT}"' in html
    assert "You've set up Defender Experts for XDR" not in html


@pytest.mark.parametrize("role_fixture", ["reader", "admin"])
def test_a_finished_guide_with_removed_access_says_so_on_close(request, login, invited, admin, role_fixture):
    client = login(admin)
    finish(client, invited, admin)
    remove_access(invited, admin)
    client.force_login(request.getfixturevalue(role_fixture))
    html = client.get(NEXT_STEPS).content.decode()
    assert 'data-testid="access-removed"' in html
    assert "You've set up Defender Experts for XDR" not in html
    summary = html[html.index('data-testid="summary"') :]
    assert "Removed" in summary.split("</dl>")[0]
    index = client.get(reverse("onboarding:index")).content.decode()
    assert 'data-testid="access-health-banner"' in index
    # The Permissions step shows the truth to everyone: nothing is granted.
    perms = client.get(PERMISSIONS).content.decode()
    assert 'name="investigate" checked' not in perms and 'name="respond" checked' not in perms


def test_htmx_reauthentication_sends_the_whole_page_to_the_password_prompt(login, invited, admin):
    client = login(admin)
    client.get(PERMISSIONS)
    session = client.session
    session["auth_time"] = 0
    session.save()
    data = {"version": version(invited), "permissions_version": perm_version(invited), "investigate": "on",
            "respond": "on"}  # fmt: skip
    response = client.post(PERMISSIONS, data, headers={"HX-Request": "true"})
    assert response["HX-Redirect"].startswith(reverse("confirm_password") + "?next=")
    assert not access_levels_state(tenant=invited).respond


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_former_close_address_lands_on_next_steps(login, invited, admin, method):
    client = login(admin)
    finish(client, invited, admin)
    response = getattr(client, method)(FORMER_CLOSE, {"version": version(invited)} if method == "post" else None)
    assert response.status_code == 302 and response["Location"] == NEXT_STEPS
    # It only redirects: closing again through the old address records nothing.
    assert not AuditEvent.objects.filter(tenant=invited, action="onboarding.guide_closed").exists()
    assert client.get(FORMER_CLOSE, follow=True).status_code == 200
