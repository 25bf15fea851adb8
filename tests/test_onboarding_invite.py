"""Provider side: the onboarding console, "Ready to onboard" and Resend."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from onboarding.exceptions import InvitationError
from onboarding.models import Invitation
from onboarding.selectors import CONSOLE_PAGE_SIZE
from onboarding.services import WELCOME_KIND, invitation_send
from outbox.models import MessageStatus, OutboxMessage
from outbox.services import outbox_deliver, outbox_due_ids
from tenancy.models import ProviderOrganization, ProviderRole, ServicePhase, Tenant, TenantRole
from tests import factories

pytestmark = pytest.mark.django_db

LINK_RE = re.compile(r"https?://[^\s\"<]+/get-started/invitation/[^\s\"<]+/")


def deliver_outbox() -> None:
    """What the dispatch sweep does; the test transaction never commits, so the
    on-commit kick doesn't run here (the browser tests use real commits)."""
    for message_id in outbox_due_ids():
        outbox_deliver(message_id=message_id)


def welcome_link(message) -> str:
    found = LINK_RE.search(message.body)
    assert found, message.body
    return found.group(0)


def test_ready_to_onboard_sends_the_welcome_email_and_moves_to_invited(
    login, sdm, contoso, admin, secadmin, reader, django_capture_on_commit_callbacks
):
    client = login(sdm)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(reverse("onboarding_provider:invite", args=[contoso.pk]))
    assert len(callbacks) == 1  # the delivery is kicked off once the transaction commits
    assert response.status_code == 302
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.INVITED

    # One outbox row, delivered (eager Celery) through Django's email backend.
    message = OutboxMessage.objects.get(tenant=contoso, kind="onboarding.welcome")
    assert message.status == MessageStatus.SENT
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    # Global and Security Administrators only; readers and operators don't get it.
    assert sorted(email.to) == ["admin@contoso.example", "secadmin@contoso.example"]
    html, mimetype = email.alternatives[0]
    assert mimetype == "text/html"
    link = welcome_link(email)
    assert link in html
    assert "Settings > Defender Experts" in email.body and "Get started" in email.body
    assert email.subject == "Get started with Microsoft Defender Experts for XDR"
    assert "You&#x27;re receiving this email" in html or "You're receiving this email" in html  # emails/base.html
    assert "ready to onboard <strong>Contoso</strong>" in html

    invitation = Invitation.objects.get(tenant=contoso)
    assert invitation.recipients == ["admin@contoso.example", "secadmin@contoso.example"]
    assert invitation.invited_by == sdm
    # The token is the invitation's random nonce plus a timestamp and signature;
    # it names no tenant.
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert token.startswith(invitation.nonce + ":") and str(contoso.pk) not in token.split(":")[1:]
    actions = set(AuditEvent.objects.filter(tenant=contoso).values_list("action", flat=True))
    assert {"onboarding.welcome_sent", "tenant.phase_changed"} <= actions
    phase_event = AuditEvent.objects.get(tenant=contoso, action="tenant.phase_changed")
    assert phase_event.actor == sdm and phase_event.after["service_phase"] == "invited"


def test_inviting_twice_is_refused_and_sends_nothing_more(sdm, contoso, admin):
    invitation_send(tenant=contoso, acting_user=sdm)
    with pytest.raises(InvitationError, match="already been invited"):
        invitation_send(tenant=contoso, acting_user=sdm)
    assert OutboxMessage.objects.filter(tenant=contoso).count() == 1


def test_a_double_click_on_ready_to_onboard_shows_a_message_not_a_second_email(login, sdm, contoso, admin):
    client = login(sdm)
    client.post(reverse("onboarding_provider:invite", args=[contoso.pk]))
    # Refused (400): the tenant's page again, saying why.
    response = client.post(reverse("onboarding_provider:invite", args=[contoso.pk]))
    assert response.status_code == 400
    assert b"already been invited" in response.content
    deliver_outbox()
    assert len(mail.outbox) == 1


def test_a_tenant_without_admins_cannot_be_invited(login, sdm, contoso, reader):
    response = login(sdm).post(reverse("onboarding_provider:invite", args=[contoso.pk]), follow=True)
    assert b"no active Global Administrator or Security Administrator" in response.content
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.NOT_INVITED
    assert not OutboxMessage.objects.exists()


def test_an_analyst_sees_the_console_but_cannot_invite(login, contoso, admin):
    analyst = factories.staff(ProviderRole.ANALYST, "analyst@experts.example")
    client = login(analyst)
    console = client.get(reverse("onboarding_provider:console"))
    assert console.status_code == 200
    # No "Ready to onboard" button an analyst can't use; the tenant page says who can.
    assert b"Ready to onboard" not in console.content
    assert (
        b"Only a service delivery manager can send the welcome email."
        in client.get(reverse("onboarding_provider:tenant", args=[contoso.pk])).content
    )
    assert client.post(reverse("onboarding_provider:invite", args=[contoso.pk])).status_code == 403
    assert not OutboxMessage.objects.exists()


def test_tenant_members_cannot_use_the_provider_console(login, admin, contoso):
    client = login(admin)
    assert client.get(reverse("onboarding_provider:console")).status_code == 403
    assert client.post(reverse("onboarding_provider:invite", args=[contoso.pk])).status_code == 403


def test_another_providers_tenant_is_a_404(login, sdm, admin):
    other_org = ProviderOrganization.objects.create(name="Other MSSP", domain="other.example")
    foreign = Tenant.objects.create(name="Foreign", primary_domain="foreign.example", provider=other_org)
    factories.member(foreign, TenantRole.GLOBAL_ADMINISTRATOR, "ga@foreign.example")
    client = login(sdm)
    assert client.get(reverse("onboarding_provider:tenant", args=[foreign.pk])).status_code == 404
    assert client.post(reverse("onboarding_provider:invite", args=[foreign.pk])).status_code == 404
    assert client.get("/provider/onboarding/tenants/abc/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.service_phase == ServicePhase.NOT_INVITED
    assert b"Foreign" not in client.get(reverse("onboarding_provider:console")).content


def test_resend_issues_a_new_link_and_the_old_one_stops_working(login, client, sdm, contoso, admin):
    first = invitation_send(tenant=contoso, acting_user=sdm)
    deliver_outbox()
    old_link = welcome_link(mail.outbox[0])
    staff_client = login(sdm)
    response = staff_client.post(reverse("onboarding_provider:resend", args=[contoso.pk]), follow=True)
    assert b"Earlier links no longer work" in response.content
    deliver_outbox()
    assert len(mail.outbox) == 2
    new_link = welcome_link(mail.outbox[1])
    assert new_link != old_link
    first.refresh_from_db()
    assert first.revoked_at is not None
    assert AuditEvent.objects.filter(tenant=contoso, action="onboarding.welcome_resent").count() == 1
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.INVITED  # a resend doesn't move the phase

    client.force_login(admin)
    old = client.get(old_link.split("127.0.0.1:8000", 1)[1])
    assert old.status_code == 410
    assert b"This link was replaced" in old.content
    assert b"resend the welcome email" in old.content
    new = client.get(new_link.split("127.0.0.1:8000", 1)[1])
    assert new.status_code == 302 and new["Location"] == reverse("onboarding:overview")


def test_a_double_clicked_resend_sends_one_email(login, sdm, contoso, admin):
    first = invitation_send(tenant=contoso, acting_user=sdm)
    client = login(sdm)
    page = client.get(reverse("onboarding_provider:tenant", args=[contoso.pk])).content.decode()
    assert f'name="latest" value="{first.pk}"' in page
    url = reverse("onboarding_provider:resend", args=[contoso.pk])
    assert client.post(url, {"latest": first.pk}).status_code == 302
    # The same form again: a newer link exists now, so nothing is sent and that link keeps working.
    response = client.post(url, {"latest": first.pk}, follow=True)
    assert b"already resent" in response.content
    assert Invitation.objects.filter(tenant=contoso).count() == 2
    assert Invitation.objects.filter(tenant=contoso, revoked_at__isnull=True).count() == 1
    assert OutboxMessage.objects.filter(kind=WELCOME_KIND).count() == 2
    # A malformed value is just a stale form, not a 500.
    assert client.post(url, {"latest": "abc"}).status_code == 400
    assert Invitation.objects.filter(tenant=contoso).count() == 2


def test_resend_is_refused_before_the_first_invite_and_after_the_guide_is_finished(sdm, contoso, admin):
    with pytest.raises(InvitationError):
        invitation_send(tenant=contoso, acting_user=sdm, resend=True)
    Tenant.objects.filter(pk=contoso.pk).update(service_phase=ServicePhase.PREPARING)
    contoso.refresh_from_db()
    with pytest.raises(InvitationError, match="only be resent"):
        invitation_send(tenant=contoso, acting_user=sdm, resend=True)


def test_console_lists_phase_invitation_and_progress(login, sdm, contoso, fabrikam, admin, outsider):
    invitation_send(tenant=contoso, acting_user=sdm)
    html = login(sdm).get(reverse("onboarding_provider:console")).content.decode()
    assert "Contoso" in html and "Fabrikam" in html
    assert "Invited" in html and "Not invited" in html
    assert "admin@contoso.example" in html  # who was invited
    assert sdm.display_name in html  # by whom
    assert "Ready to onboard" in html  # Fabrikam can still be invited


def _bulk_tenants(n: int, start: int) -> None:
    """``n`` tenants, three to a name, so that pages split runs of equal names."""
    org = factories.provider_org()
    Tenant.objects.bulk_create(
        [
            Tenant(name=f"Tenant {i // 3:04d}", primary_domain=f"bulk{i}.example", provider=org)
            for i in range(start, start + n)
        ]
    )


def _console_link(body: str, rel: str) -> dict[str, str]:
    found = re.search(rf'href="\?([^"]*)" rel="{rel}"', body)
    assert found, f"no {rel} link"
    return dict(parse_qsl(html.unescape(found.group(1))))


def _console_rows(body: str) -> list[str]:
    return re.findall(r'data-testid="tenant-(\d+)"', body)


def test_console_pages_by_keyset_in_a_fixed_number_of_queries(login, sdm):
    """The first page or the next, thirty tenants or ten times as many: the same statements, no OFFSET, a
    count bounded by a LIMIT. Tenants sharing a name are neither skipped nor repeated across pages."""
    client = login(sdm)
    console = reverse("onboarding_provider:console")

    def get(params: dict[str, str]) -> tuple[str, list[str]]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(console, params)
        assert response.status_code == 200
        return response.content.decode(), [q["sql"] for q in captured.captured_queries]

    _bulk_tenants(60, 0)
    for t in Tenant.objects.order_by("pk")[:2]:
        factories.member(t, TenantRole.GLOBAL_ADMINISTRATOR)
        invitation_send(tenant=t, acting_user=sdm)
    client.get(console)  # warm the session
    counts = []
    for scale in (1, 10):
        body, first = get({"q": "tenant"})
        seen = _console_rows(body)
        body, second = get(_console_link(body, "next"))
        seen += _console_rows(body)
        counts += [len(first), len(second)]
        for sql in first + second:
            assert "OFFSET" not in sql
            if '"tenancy_tenant"' in sql and "COUNT(" in sql:
                assert "LIMIT" in sql
        if scale == 1:
            _bulk_tenants(540, 60)  # ten times the tenants
    assert len(set(counts)) == 1, counts
    total = Tenant.objects.count()
    assert f"Page 2 of {-(-total // CONSOLE_PAGE_SIZE)}" in body and f"({total})" in body
    ordered = [str(pk) for pk in Tenant.objects.order_by("name", "id").values_list("pk", flat=True)]
    assert seen == ordered[: 2 * CONSOLE_PAGE_SIZE] and len(set(seen)) == 2 * CONSOLE_PAGE_SIZE
    back, _ = get(_console_link(body, "prev"))
    assert "Page 1 of" in back and _console_rows(back) == seen[:CONSOLE_PAGE_SIZE]
    # The filters ride along in the links.
    assert _console_link(back, "next")["q"] == "tenant"


def test_console_longer_than_the_count_limit_says_more_than(login, sdm, monkeypatch):
    from core import keyset

    monkeypatch.setattr(keyset, "COUNT_LIMIT", 20)
    _bulk_tenants(60, 0)
    body = login(sdm).get(reverse("onboarding_provider:console")).content.decode()
    assert "(more than 20)" in body and "Page 1</span>" in body
    assert "Page 1 of" not in body


def test_console_with_a_hand_edited_cursor_shows_the_first_page(login, sdm):
    _bulk_tenants(60, 0)
    client = login(sdm)
    first = _console_rows(client.get(reverse("onboarding_provider:console")).content.decode())
    for params in [
        {"after": "nonsense"},
        {"before": "Tenant~x"},
        {"after": "~" + "9" * 30},
        {"page": "9"},
        {"after": "Tenant 0001~", "page": "x"},
        # Well-formed, past either end of the list.
        {"after": "zzzz~1", "page": "2"},
        {"before": "AAAA~1", "page": "2"},
    ]:
        response = client.get(reverse("onboarding_provider:console"), params)
        body = response.content.decode()
        assert response.status_code == 200, params
        assert "Previous" not in body and _console_rows(body) == first, params


def test_console_filters_by_phase_and_name(login, sdm, contoso, fabrikam, admin, outsider):
    invitation_send(tenant=contoso, acting_user=sdm)
    client = login(sdm)
    invited = client.get(reverse("onboarding_provider:console"), {"phase": "invited"}).content.decode()
    assert "Contoso" in invited and "Fabrikam" not in invited
    by_name = client.get(reverse("onboarding_provider:console"), {"q": "fabri"}).content.decode()
    assert "Fabrikam" in by_name and "contoso.example" not in by_name
    # An unknown phase is ignored, not an error.
    assert client.get(reverse("onboarding_provider:console"), {"phase": "nope", "page": "x"}).status_code == 200


def test_provider_tenant_page_runs_a_fixed_number_of_queries(login, sdm, contoso, admin, django_assert_num_queries):
    invitation_send(tenant=contoso, acting_user=sdm)
    client = login(sdm)
    url = reverse("onboarding_provider:tenant", args=[contoso.pk])
    client.get(url)
    # session + user + no membership + provider staff (4), tenant (1), progress (1), recipients (1),
    # invitations (1)
    with django_assert_num_queries(8):
        html = client.get(url).content.decode()
    assert "Resend welcome email" in html
    for _ in range(9):
        invitation_send(tenant=contoso, acting_user=sdm, resend=True)
    with django_assert_num_queries(8):
        html = client.get(url).content.decode()
    assert html.count("Replaced") == 9 and html.count(">Active<") == 1


def test_console_flags_an_expired_link(login, sdm, contoso, admin):
    import datetime as dt

    import time_machine
    from django.utils import timezone

    invitation_send(tenant=contoso, acting_user=sdm)
    client = login(sdm)
    with time_machine.travel(timezone.now() + dt.timedelta(days=15)):
        client.force_login(sdm)
        html = client.get(reverse("onboarding_provider:console")).content.decode()
        detail = client.get(reverse("onboarding_provider:tenant", args=[contoso.pk])).content.decode()
    assert "Link expired" in html
    assert ">Expired<" in detail


def test_django_admin_lists_invitations_without_their_secret(client, sdm, contoso, admin):
    from tenancy.models import User

    invitation = invitation_send(tenant=contoso, acting_user=sdm)
    superuser = User.objects.create_superuser(email="root@experts.example", password="x" * 16, display_name="Root")
    factories.enrol_totp(superuser)  # operators need a second factor too
    client.force_login(superuser)
    listing = client.get("/django-admin/onboarding/invitation/")
    assert listing.status_code == 200
    detail = client.get(f"/django-admin/onboarding/invitation/{invitation.pk}/change/")
    assert detail.status_code == 200
    assert invitation.nonce not in detail.content.decode()
    assert client.get("/django-admin/onboarding/guideprogress/").status_code == 200
