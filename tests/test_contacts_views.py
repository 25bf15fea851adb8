"""Notification contacts over HTTP: roles, tenants, forms, htmx and query counts."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from contacts.models import NotificationContact, NotificationType
from contacts.services import contact_add, contact_set_phone
from tests import factories

pytestmark = pytest.mark.django_db

INDEX = reverse("contacts:index")
NOTE = "Given the urgent nature of the communications, it is recommended to have someone available at all times."


@pytest.fixture
def alice(contoso):
    return factories.directory_user(contoso, "Alice Martin", mail="alice@contoso.example")


@pytest.fixture
def bob(contoso):
    return factories.directory_user(contoso, "Bob Stone", mail="bob@contoso.example")


def _add(tenant, actor, entry, ntype=NotificationType.INCIDENT, phone=""):
    key = "directory_user_id" if hasattr(entry, "user_principal_name") else "directory_group_id"
    return contact_add(tenant=tenant, acting_user=actor, notification_type=ntype, phone=phone, **{key: entry.pk})


# --- The page -----------------------------------------------------------------------------


def test_page_shows_seed_labels_note_and_no_incident_warning(login, admin):
    response = login(admin).get(INDEX)
    html = response.content.decode()
    assert response.status_code == 200
    assert NOTE in html
    for label in ("Contact person or team", "Notification type", "Incident contact", "Service review contact", ">Add<"):
        assert label in html
    assert 'data-testid="warning-no-incident"' in html
    assert 'data-testid="warning-no-phone"' not in html


def test_warning_when_no_incident_contact_has_a_phone(login, admin, contoso, alice):
    contact = _add(contoso, admin, alice)
    html = login(admin).get(INDEX).content.decode()
    assert 'data-testid="warning-no-incident"' not in html
    assert 'data-testid="warning-no-phone"' in html
    contact_set_phone(tenant=contoso, acting_user=admin, contact=contact, phone="+14255550100", expected_version=1)
    html = login(admin).get(INDEX).content.decode()
    assert 'data-testid="warning-no-phone"' not in html
    assert "+1 425 555 0100" in html


def test_warning_when_no_incident_contact_can_receive_notifications(login, admin, contoso, alice, bob):
    _add(contoso, admin, alice, phone="+14255550100")
    _add(contoso, admin, bob, NotificationType.SERVICE_REVIEW)
    client = login(admin)
    assert 'data-testid="warning-no-reachable-incident"' not in client.get(INDEX).content.decode()
    # The only incident contact leaves the directory: still listed, but nobody can be notified.
    alice.enabled = False
    alice.save(update_fields=["enabled"])
    html = client.get(INDEX).content.decode()
    assert 'data-testid="warning-no-reachable-incident"' in html
    assert "None of your incident contacts can receive notifications." in html
    assert 'data-testid="warning-no-incident"' not in html
    assert 'data-testid="warning-flagged"' in html
    # Another, reachable incident contact clears it.
    _add(contoso, admin, bob)
    assert 'data-testid="warning-no-reachable-incident"' not in client.get(INDEX).content.decode()


def test_readers_and_operators_view_without_controls(login, reader, operator, admin, contoso, alice):
    _add(contoso, admin, alice)
    for user in (reader, operator):
        html = login(user).get(INDEX).content.decode()
        assert "Alice Martin" in html
        assert 'data-testid="read-only"' in html
        assert "Send test notification" not in html
        assert 'action="/settings/defender-experts/notification-contacts/add/"' not in html


def test_flagged_contacts_are_listed_with_the_flag(login, admin, contoso, alice, bob):
    _add(contoso, admin, alice)
    _add(contoso, admin, bob, NotificationType.SERVICE_REVIEW)
    alice.delete()
    bob.enabled = False
    bob.save()
    html = login(admin).get(INDEX).content.decode()
    assert html.count("No longer in your directory") == 2
    assert "This user is disabled" in html
    assert 'data-testid="warning-flagged"' in html


def test_recent_history_comes_from_the_audit_trail(login, admin, contoso, alice):
    _add(contoso, admin, alice)
    html = login(admin).get(INDEX).content.decode()
    assert "Added Alice Martin (person, alice@contoso.example) as incident contact" in html


def _populate(tenant, actor, count):
    """``count`` contacts: a team (3 members) plus people split over both types."""
    members = [factories.directory_user(tenant, f"Member {i}", mail=f"m{i}@contoso.example") for i in range(3)]
    _add(tenant, actor, factories.directory_group(tenant, "Team A", members=members))
    for i in range(count - 1):
        user = factories.directory_user(tenant, f"Person {i:03d}", mail=f"p{i}@contoso.example")
        if i % 2:
            _add(tenant, actor, user, NotificationType.SERVICE_REVIEW)
        else:
            _add(tenant, actor, user, phone="+14255550100" if i == 0 else "")


@pytest.mark.parametrize("count", [2, 200])
def test_page_query_count_is_the_same_for_2_and_200_contacts(login, admin, contoso, django_assert_num_queries, count):
    _populate(contoso, admin, count)
    client = login(admin)
    assert NotificationContact.objects.active().count() == count
    # 1 session, 1 user, 1 membership with the provider-staff check and the nav's
    # membership count joined (middleware); 1 contacts with directory rows, welcome
    # email and member counts; 1 team member previews; 1 recent history.
    with django_assert_num_queries(6):
        response = client.get(INDEX)
    assert response.status_code == 200
    assert response.content.decode().count('data-testid="contact-row"') == count


# --- Search ---------------------------------------------------------------------------


def test_htmx_search_returns_the_results_partial(login, admin, contoso, alice):
    factories.directory_group(contoso, "Alice Fans", mail="", mail_enabled=False)
    response = login(admin).get(reverse("contacts:search"), {"q": "alice"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert "Alice Martin" in html
    assert "2 results" in html
    assert "This group can&#x27;t receive email" in html
    assert f'value="user:{alice.pk}"' in html


def test_search_prompts_for_more_and_says_when_nothing_matches(login, admin):
    client = login(admin)
    short = client.get(reverse("contacts:search"), {"q": "a"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Type at least 2 characters to search." in short
    none = client.get(reverse("contacts:search"), {"q": "zzz"}, HTTP_HX_REQUEST="true").content.decode()
    assert "No people or teams in your directory match" in none


def test_plain_search_renders_a_full_page_with_add_buttons(login, admin, alice):
    response = login(admin).get(reverse("contacts:search"), {"q": "alice", "next": INDEX})
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" in html
    assert f'name="entry" value="user:{alice.pk}"' in html


def test_search_is_one_query_over_http(login, admin, alice, django_assert_num_queries):
    client = login(admin)
    # 3 for session/user/membership (middleware), 1 for the search.
    with django_assert_num_queries(4):
        client.get(reverse("contacts:search"), {"q": "alice"}, HTTP_HX_REQUEST="true")


def test_fixed_type_picker_uses_a_hidden_field(login, admin, alice):
    html = (
        login(admin)
        .get(reverse("contacts:search"), {"q": "alice", "notification_type": "service_review", "fixed": "1"})
        .content.decode()
    )
    assert '<input type="hidden" name="notification_type" value="service_review">' in html
    assert "<select" not in html.split('id="picker-service_review"')[1].split("</section>")[0]


# --- Adding ---------------------------------------------------------------------------------


def test_add_redirects_back_with_a_message(login, admin, contoso, alice):
    response = login(admin).post(
        reverse("contacts:add"),
        {"notification_type": "incident", "entry": f"user:{alice.pk}", "next": INDEX},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == INDEX
    assert "Alice Martin was added as an incident contact" in response.content.decode()
    assert NotificationContact.objects.filter(tenant=contoso, directory_user=alice).exists()


def test_add_honours_a_safe_relative_next_and_reports_errors_there(login, admin, contoso, alice):
    client = login(admin)
    guide = "/settings/defender-experts/get-started/?step=incident"
    response = client.post(
        reverse("contacts:add"), {"notification_type": "incident", "directory_user_id": alice.pk, "next": guide}
    )
    assert response.status_code == 302 and response["Location"] == guide
    # Refused: the plain search page again (the no-JavaScript path it came from), the choice and next kept.
    response = client.post(
        reverse("contacts:add"),
        {
            "notification_type": "incident",
            "entry": f"user:{alice.pk}",
            "q": "alice",
            "phone": "+1 425 555 0100",
            "next": guide,
        },
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert html.count("Alice Martin is already an incident contact.") == 1
    assert f'name="entry" value="user:{alice.pk}"' in html and 'value="+1 425 555 0100"' in html
    assert f'name="next" value="{guide}"' in html


@pytest.mark.parametrize(
    "evil", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", "/\\evil.example"]
)
def test_add_ignores_an_unsafe_next(login, admin, alice, evil):
    response = login(admin).post(
        reverse("contacts:add"), {"notification_type": "incident", "entry": f"user:{alice.pk}", "next": evil}
    )
    assert response.status_code == 302
    assert response["Location"] == INDEX


def test_duplicate_add_rerenders_the_form_with_the_error(login, admin, contoso, alice):
    _add(contoso, admin, alice)
    response = login(admin).post(
        reverse("contacts:add"),
        {"notification_type": "incident", "entry": f"user:{alice.pk}", "q": "alice", "next": INDEX},
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert html.count("Alice Martin is already an incident contact.") == 1
    assert 'value="alice"' in html  # the search is kept
    assert NotificationContact.objects.count() == 1


def test_not_mail_enabled_group_add_is_refused(login, admin, contoso):
    group = factories.directory_group(contoso, "Readers Group", mail="", mail_enabled=False)
    response = login(admin).post(
        reverse("contacts:add"), {"notification_type": "incident", "entry": f"group:{group.pk}"}
    )
    assert response.status_code == 400
    assert "this group can&#x27;t receive email" in response.content.decode()
    assert not NotificationContact.objects.exists()


def test_bad_add_input_never_500s(login, admin):
    client = login(admin)
    for data in ({}, {"entry": "user:abc", "notification_type": "incident"}, {"entry": "nope"}, {"entry": "group:"}):
        assert client.post(reverse("contacts:add"), data).status_code == 400


@pytest.mark.parametrize("version", [None, "", "abc", "1.0", "99999999999999999999999"])
def test_a_change_without_a_readable_version_is_refused_not_applied(login, admin, contoso, alice, bob, version):
    a, b = _add(contoso, admin, alice), _add(contoso, admin, bob)
    extra = {} if version is None else {"version": version}
    client = login(admin)
    posts = [
        (reverse("contacts:remove", args=[a.pk]), {"confirm": "yes"}),
        (reverse("contacts:move", args=[a.pk]), {"direction": "down", "neighbour": b.pk}),
        (reverse("contacts:phone", args=[a.pk]), {"phone": "+14255550100"}),
    ]
    for url, data in posts:
        response = client.post(url, {**data, **extra}, follow=True)
        assert response.status_code in (200, 409)  # a version that can't match is a conflict
        body = response.content.decode()
        assert "nothing was changed" in body or "changed by someone else" in body
    a.refresh_from_db()
    assert (a.removed_at, a.position, a.phone, a.version) == (None, 1, "", 1)
    assert not AuditEvent.objects.filter(action__in=["contacts.removed", "contacts.reordered"]).exists()


def test_nul_in_a_search_or_form_is_refused_not_a_500(login, admin, contoso, alice):
    """defender_portal/input_guard.py refuses NUL anywhere in a request with a 400 (tests/test_input_guard.py)."""
    client = login(admin)
    url = reverse("contacts:search")
    assert client.get(url, {"q": "ali\x00ce"}, HTTP_HX_REQUEST="true").status_code == 400
    assert client.get(url, {"q": "\x00\x00"}).status_code == 400
    response = client.post(reverse("contacts:add"), {"entry": "user:1\x00", "q": "al\x00i"})
    assert response.status_code == 400
    # Other control characters are ignored by the search, as before.
    response = client.get(url, {"q": "ali\x01ce"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Alice Martin" in response.content.decode()


# --- Roles and tenants ---------------------------------------------------------------------


def _write_requests(contact, entry):
    return [
        (reverse("contacts:add"), {"notification_type": "incident", "entry": f"user:{entry.pk}"}),
        (reverse("contacts:remove", args=[contact.pk]), {"confirm": "yes", "version": contact.version}),
        (reverse("contacts:move", args=[contact.pk]), {"direction": "down", "version": contact.version}),
        (reverse("contacts:phone", args=[contact.pk]), {"phone": "+14255550100", "version": contact.version}),
        (reverse("contacts:send_test", args=[contact.pk]), {}),
        (reverse("contacts:retry_email", args=[contact.pk]), {}),
    ]


@pytest.mark.parametrize("role", ["reader", "operator"])
def test_readers_and_operators_get_403_on_every_write(request, login, admin, contoso, alice, bob, role):
    contact = _add(contoso, admin, alice)
    client = login(request.getfixturevalue(role))
    for url, data in _write_requests(contact, bob):
        assert client.post(url, data).status_code == 403, url
    assert client.get(reverse("contacts:remove", args=[contact.pk])).status_code == 403
    assert NotificationContact.objects.count() == 1
    assert not AuditEvent.objects.exclude(action="contacts.added").filter(action__startswith="contacts.").exists()


def test_secadmin_can_change(login, secadmin, contoso, alice):
    response = login(secadmin).post(
        reverse("contacts:add"), {"notification_type": "incident", "entry": f"user:{alice.pk}"}
    )
    assert response.status_code == 302
    assert NotificationContact.objects.get().added_by == secadmin


def test_another_tenants_contact_ids_get_404(login, outsider, admin, contoso, alice, bob):
    contact = _add(contoso, admin, alice)
    client = login(outsider)
    for url, data in _write_requests(contact, bob)[1:]:
        assert client.post(url, data).status_code == 404, url
    assert client.get(reverse("contacts:remove", args=[contact.pk])).status_code == 404
    # Adding another tenant's directory entry is refused as not found.
    response = client.post(reverse("contacts:add"), {"notification_type": "incident", "entry": f"user:{bob.pk}"})
    assert response.status_code == 400
    assert "isn&#x27;t in your directory" in response.content.decode()
    assert NotificationContact.objects.count() == 1
    # And their search never shows Contoso's directory.
    html = client.get(reverse("contacts:search"), {"q": "alice"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Alice" not in html


def test_unknown_ids_are_404(login, admin):
    client = login(admin)
    assert client.post(reverse("contacts:move", args=[999999]), {"direction": "up"}).status_code == 404
    assert client.get("/settings/defender-experts/notification-contacts/abc/remove/").status_code == 404


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(INDEX)
    assert response.status_code == 302 and reverse("login") in response["Location"]


# --- Remove, reorder, phone, test ---------------------------------------------------------------


def test_remove_without_confirm_shows_a_confirmation_page(login, admin, contoso, alice):
    contact = _add(contoso, admin, alice)
    client = login(admin)
    page = client.post(reverse("contacts:remove", args=[contact.pk]), {"version": 1})
    assert page.status_code == 200
    assert "Remove Alice Martin?" in page.content.decode()
    assert NotificationContact.objects.active().count() == 1
    done = client.post(
        reverse("contacts:remove", args=[contact.pk]),
        {"version": 1, "confirm": "yes", "confirm_last": "yes"},
        follow=True,
    )
    assert "Alice Martin was removed as an incident contact." in done.content.decode()
    assert NotificationContact.objects.active().count() == 0


def test_htmx_remove_rerenders_the_board(login, admin, contoso, alice):
    contact = _add(contoso, admin, alice)
    response = login(admin).post(
        reverse("contacts:remove", args=[contact.pk]),
        {"version": 1, "confirm": "yes", "confirm_last": "yes"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="contacts-board"')
    assert "Alice Martin was removed" in html
    assert 'data-testid="warning-no-incident"' in html


def test_stale_remove_shows_a_conflict(login, admin, secadmin, contoso, alice):
    contact = _add(contoso, admin, alice)
    contact_set_phone(tenant=contoso, acting_user=secadmin, contact=contact, phone="+14255550100", expected_version=1)
    response = login(admin).post(
        reverse("contacts:remove", args=[contact.pk]), {"version": 1, "confirm": "yes"}, follow=True
    )
    assert "changed by someone else" in response.content.decode()
    assert NotificationContact.objects.active().count() == 1


def test_reorder_and_stale_reorder(login, admin, contoso, alice, bob):
    a, b = _add(contoso, admin, alice), _add(contoso, admin, bob)
    client = login(admin)
    response = client.post(
        reverse("contacts:move", args=[b.pk]), {"direction": "up", "version": 1, "neighbour": a.pk}, follow=True
    )
    assert "Bob Stone is now the primary contact." in response.content.decode()
    # Replaying the same (now stale) form doesn't swap them back.
    response = client.post(
        reverse("contacts:move", args=[b.pk]), {"direction": "up", "version": 1, "neighbour": a.pk}, follow=True
    )
    assert "changed by someone else" in response.content.decode()
    order = list(NotificationContact.objects.active().order_by("position").values_list("display_name", flat=True))
    assert order == ["Bob Stone", "Alice Martin"]


def test_invalid_phone_rerenders_with_the_typed_value(login, admin, contoso, alice):
    contact = _add(contoso, admin, alice)
    response = login(admin).post(reverse("contacts:phone", args=[contact.pk]), {"phone": "0123", "version": 1})
    html = response.content.decode()
    assert response.status_code == 400
    assert 'value="0123"' in html
    # Once, next to the field, tied to it for screen readers.
    assert html.count("must be in international format") == 1
    assert f'aria-invalid="true" aria-describedby="phone-{contact.pk}-error"' in html
    assert f'<p class="field__error" id="phone-{contact.pk}-error" role="alert">' in html


def test_stale_phone_shows_the_current_number(login, admin, secadmin, contoso, alice):
    contact = _add(contoso, admin, alice)
    contact_set_phone(tenant=contoso, acting_user=secadmin, contact=contact, phone="+14255550100", expected_version=1)
    response = login(admin).post(
        reverse("contacts:phone", args=[contact.pk]), {"phone": "+442079460958", "version": 1}, follow=True
    )
    assert "Current phone number: +1 425 555 0100" in response.content.decode()


def test_send_test_notification_is_rate_limited(login, admin, contoso, alice):
    contact = _add(contoso, admin, alice)
    client = login(admin)
    for _ in range(3):
        response = client.post(reverse("contacts:send_test", args=[contact.pk]), follow=True)
        assert "A test notification is on its way to alice@contoso.example." in response.content.decode()
    response = client.post(reverse("contacts:send_test", args=[contact.pk]), follow=True)
    assert "Alice Martin has already been sent 3 test notifications in the last 10 minutes" in response.content.decode()
    assert "You can send another in 10 minutes, at " in response.content.decode()


def test_row_shows_sent_or_failed_and_a_failed_email_can_be_retried(login, admin, reader, contoso, alice, bob):
    from django.utils import timezone

    from outbox.models import MessageStatus, OutboxMessage

    sent, failed = _add(contoso, admin, alice), _add(contoso, admin, bob)
    OutboxMessage.objects.filter(pk=sent.welcome_message_id).update(status=MessageStatus.SENT, sent_at=timezone.now())
    OutboxMessage.objects.filter(pk=failed.welcome_message_id).update(status=MessageStatus.FAILED, attempts=8)
    client = login(admin)
    html = client.get(INDEX).content.decode()
    assert ">Sent<" in html
    assert "Sending failed" in html and "after 8 attempts" in html
    # Retrying re-queues the same outbox row (never a second email), audited.
    refused = client.post(reverse("contacts:retry_email", args=[sent.pk]))
    assert refused.status_code == 400 and "hasn&#x27;t failed" in refused.content.decode()
    assert OutboxMessage.objects.get(pk=sent.welcome_message_id).status == MessageStatus.SENT
    response = client.post(reverse("contacts:retry_email", args=[failed.pk]), follow=True)
    assert "will be sent again shortly" in response.content.decode()
    assert OutboxMessage.objects.get(pk=failed.welcome_message_id).status == MessageStatus.PENDING
    assert OutboxMessage.objects.filter(kind="contacts.added").count() == 2
    assert AuditEvent.objects.filter(action="contacts.email_retried", actor=admin).count() == 1
    assert login(reader).post(reverse("contacts:retry_email", args=[failed.pk])).status_code == 403


def test_remove_asks_in_plain_words(login, admin, contoso, alice):
    _add(contoso, admin, alice)
    _add(contoso, admin, alice, NotificationType.SERVICE_REVIEW)
    client = login(admin)
    for contact in NotificationContact.objects.active().filter(display_name="Alice Martin"):
        # The button posts without "confirm": the answer is the confirmation (in a dialog with script).
        html = client.post(reverse("contacts:remove", args=[contact.pk]), {"version": contact.version}).content.decode()
        assert "Remove Alice Martin?" in html
        kind = "incident notifications" if contact.notification_type == "incident" else "service review communications"
        assert f"will no longer receive {kind} from Defender Experts" in html
        assert "and will get a short email saying so." in html
        assert "data-flyout-content" in html
    assert NotificationContact.objects.active().filter(display_name="Alice Martin").count() == 2
