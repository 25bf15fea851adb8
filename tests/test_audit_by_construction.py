"""Every write is audited, by construction.

* Every route of the portal is classified here by URL name: a write (``WRITES``, with a valid request for it) or
  not (``NOT_WRITES``, with the reason). A route added without being classified fails
  ``test_every_route_is_classified``; the same holds for every Django admin action, add, change and delete form
  (``ADMIN_WRITES``).
* Each write, made for real, adds audit rows, and only in the log of the tenant it changes.
* Each write is audited in the same transaction as the change: with the audit row's INSERT made to fail (after it
  ran), neither the change nor the row persists (every table of the portal is compared before and after).
* A route said not to write changes nothing but the session (its SQL is captured): a GET-only route refuses POST.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.apps import apps
from django.contrib import admin
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from audit.models import AuditEvent
from contacts.models import NotificationType
from contacts.services import contact_add
from environment.models import Device, DirectoryUser, DomainController
from onboarding.services import invitation_send
from outbox.models import MessageStatus, OutboxMessage
from outbox.services import outbox_enqueue
from permissions.models import AccessGrant
from permissions.selectors import access_levels_state
from permissions.services import access_levels_set
from tenancy.models import Membership, ServicePhase, Tenant, TenantRole, User
from tenancy.reauth import SESSION_AUTH_TIME
from tests import factories
from tests.conftest import fresh_totp_code

pytestmark = pytest.mark.django_db

# Written by every request of a signed-in user (sessions, activity tracking, throttling), never tenant data.
SESSION_TABLES = frozenset(
    {"django_session", "usersessions_usersession", "axes_accessattempt", "axes_accesslog", "axes_accessfailurelog"}
)
# Sign-in bookkeeping: the last sign-in time and the authenticator's last use, written by Django and allauth.
SIGN_IN_TABLES = frozenset({"tenancy_user", "mfa_authenticator"})
WRITE_SQL = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)


@dataclass
class Write:
    """One valid request that changes something, and the tenant whose log must show it."""

    client: Client
    url: str
    tenant: Tenant | None
    data: dict[str, Any] = field(default_factory=dict)
    method: str = "post"
    # Tables this request may write outside its transaction (sign-in bookkeeping).
    also: frozenset[str] = frozenset()
    # What it changes is sessions (signing out): SESSION_TABLES count as its change.
    sessions: bool = False
    # The audit row is the whole record (an expert's attempt, allowed or refused).
    attempt: bool = False
    # The tenant whose log must show it, when the write creates it (found after the request).
    created: Callable[[], Tenant | None] | None = None

    def log(self) -> int | None:
        tenant = self.created() if self.created is not None else self.tenant
        return tenant.pk if tenant is not None else None

    def send(self, client: Client | None = None) -> Any:
        return getattr(client or self.client, self.method)(self.url, self.data)


class Cast:
    """The fixtures a case needs, created on first use."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return self._request.getfixturevalue(name)

    def client(self, user: User, *, recent: bool = True) -> Client:
        client = Client(raise_request_exception=False)
        client.force_login(user)
        if recent:  # a sensitive change right after the password prompt
            session = client.session
            session[SESSION_AUTH_TIME] = int(timezone.now().timestamp())
            session.save()
        return client


# --- The portal's writes -------------------------------------------------------------------------------------------


def _version(c: Cast) -> int:
    return access_levels_state(tenant=c.contoso).version


def _granted(c: Cast, respond: bool = False) -> None:
    access_levels_set(
        tenant=c.contoso,
        acting_user=c.admin,
        investigate=True,
        respond=respond,
        expected_version=_version(c),
        recently_authenticated=True,
    )


def _contact(c: Cast, name: str = "Alice Martin") -> Any:
    person = factories.directory_user(c.contoso, name, mail=f"{name.split()[0].lower()}@contoso.example")
    return contact_add(
        tenant=c.contoso, acting_user=c.admin, notification_type=NotificationType.INCIDENT, directory_user_id=person.pk
    )


def _failed_message(c: Cast) -> OutboxMessage:
    message = outbox_enqueue(
        tenant=c.contoso,
        kind="test.hello",
        to=["someone@contoso.example"],
        subject="Hello",
        template="emails/test/hello",
        context={"name": "Avery"},
    )
    OutboxMessage.objects.filter(pk=message.pk).update(status=MessageStatus.FAILED, attempts=3)
    return message


def _admin_write(c: Cast, name: str, data: dict[str, Any] | None = None, *args: Any) -> Write:
    return Write(c.client(c.admin), reverse(name, args=args), c.contoso, data or {})


def _sdm_write(c: Cast, name: str, data: dict[str, Any] | None = None, *args: Any) -> Write:
    return Write(c.client(c.sdm), reverse(name, args=args), c.contoso, data or {})


def w_levels(c: Cast) -> Write:
    # The one Save of the access levels, with Access security data from all devices (under them) turned off.
    data = {"version": _version(c), "investigate": "on", "duration": "90", "all_devices_shown": "True", "confirm": "1"}
    return _admin_write(c, "permissions:levels", data)


def w_renew(c: Cast) -> Write:
    _granted(c)
    grant = AccessGrant.objects.get(access__tenant=c.contoso)
    return _admin_write(c, "permissions:renew", {"version": _version(c), "duration": "90"}, grant.pk)


def w_remove(c: Cast) -> Write:
    _granted(c)
    return _admin_write(c, "permissions:remove", {"version": _version(c), "confirm": "True"})


def w_restore(c: Cast) -> Write:
    _granted(c)
    c.client(c.admin).post(reverse("permissions:remove"), {"version": _version(c), "confirm": "True"})
    return _admin_write(c, "permissions:restore", {"version": _version(c), "investigate": "on", "duration": "30"})


def w_contact_add(c: Cast) -> Write:
    person = factories.directory_user(c.contoso, "Bob Stone", mail="bob@contoso.example")
    return _admin_write(c, "contacts:add", {"notification_type": "incident", "entry": f"user:{person.pk}"})


def w_contact_remove(c: Cast) -> Write:
    contact = _contact(c)
    # The only incident contact: its removal is confirmed knowing nobody is left.
    data = {"version": contact.version, "confirm": "yes", "confirm_last": "yes"}
    return _admin_write(c, "contacts:remove", data, contact.pk)


def w_contact_move(c: Cast) -> Write:
    first, second = _contact(c), _contact(c, "Bob Stone")
    data = {"direction": "up", "version": second.version, "neighbour": first.pk}
    return _admin_write(c, "contacts:move", data, second.pk)


def w_contact_phone(c: Cast) -> Write:
    contact = _contact(c)
    return _admin_write(c, "contacts:phone", {"phone": "+14255550100", "version": contact.version}, contact.pk)


def w_contact_send_test(c: Cast) -> Write:
    return _admin_write(c, "contacts:send_test", {}, _contact(c).pk)


def w_contact_retry_email(c: Cast) -> Write:
    contact = _contact(c)
    OutboxMessage.objects.filter(pk=contact.welcome_message_id).update(status=MessageStatus.FAILED, attempts=8)
    return _admin_write(c, "contacts:retry_email", {}, contact.pk)


def w_request_refresh(c: Cast) -> Write:
    return _admin_write(c, "readiness:request_refresh")


def w_devices(c: Cast) -> Write:
    device = factories.devices(c.contoso, 1, onboarded=False)[0]
    return _admin_write(c, "environment:devices", {"action": "onboard_selected", "device": [device.pk]})


def w_sensor(c: Cast) -> Write:
    dc = factories.domain_controller(c.contoso, "CTS-DC01", sensor=False)
    return _admin_write(c, "environment:domain_controller_sensor", {"action": "install"}, dc.pk)


def w_user_create(c: Cast) -> Write:
    data = {"display_name": "Nestor Wilke", "user_principal_name": "nestor@contoso.example", "mail": ""}
    return _admin_write(c, "environment:directory_user_create", data)


def w_group_create(c: Cast) -> Write:
    data = {"display_name": "SOC team", "mail": "soc@contoso.example", "mail_enabled": "on"}
    return _admin_write(c, "environment:directory_group_create", data)


def w_user_enabled(c: Cast) -> Write:
    person = factories.directory_user(c.contoso, "Lidia Holloway")
    return _admin_write(c, "environment:directory_user_enabled", {"enabled": "false"}, person.pk)


def w_user_high_value(c: Cast) -> Write:
    person = factories.directory_user(c.contoso, "Isaiah Langer")
    return _admin_write(c, "environment:directory_user_high_value", {"high_value": "true"}, person.pk)


def w_exclusions_add(c: Cast) -> Write:
    group = factories.device_group(c.contoso, "Executives")
    return _admin_write(c, "exclusions:add", {"group": [group.pk], "version": 1}, "device-groups")


def w_exclusions_remove(c: Cast) -> Write:
    from exclusions.models import ExcludedUserGroup
    from exclusions.services import exclusion_user_groups_add

    group = factories.security_group(c.contoso, "VIPs")
    exclusion_user_groups_add(tenant=c.contoso, acting_user=c.admin, directory_group_ids=[group.pk], expected_version=1)
    row = ExcludedUserGroup.objects.get(directory_group=group)
    return _admin_write(c, "exclusions:remove", {"version": 2, "confirm": "True"}, "user-groups", row.pk)


def w_exclusions_high_value(c: Cast) -> Write:
    return _admin_write(c, "exclusions:high_value", {"exclude_high_value": "on", "version": 1, "confirm": "1"})


def w_user_delete(c: Cast) -> Write:
    person = factories.directory_user(c.contoso, "Lee Gu")
    return _admin_write(c, "environment:directory_user_delete", {"confirm": "yes"}, person.pk)


def w_setting(c: Cast) -> Write:
    return _admin_write(c, "environment:settings", {"key": "mde.edr_block_mode", "value": "on"})


def w_licence(c: Cast) -> Write:
    return _admin_write(c, "environment:licences", {"product": "mde_p2", "seats": "30"})


def w_guide_step(c: Cast) -> Write:
    c.admin  # noqa: B018 - the welcome email goes to an administrator
    invitation_send(tenant=c.contoso, acting_user=c.sdm)
    c.contoso.refresh_from_db()
    from onboarding.selectors import guide_progress

    data = {"version": guide_progress(tenant=c.contoso).version, "permissions_version": _version(c)}
    return _admin_write(c, "onboarding:step", {**data, "investigate": "on", "respond": "on"}, "permissions")


def w_get_started(c: Cast) -> Write:
    c.admin  # noqa: B018 - the welcome email goes to an administrator
    invitation_send(tenant=c.contoso, acting_user=c.sdm)
    write = _admin_write(c, "onboarding:get_started")
    write.method = "get"
    return write


def w_overview(c: Cast) -> Write:
    c.admin  # noqa: B018 - the welcome email goes to an administrator
    invitation_send(tenant=c.contoso, acting_user=c.sdm)
    write = _admin_write(c, "onboarding:overview")
    write.method = "get"
    return write


def w_invitation(c: Cast) -> Write:
    c.admin  # noqa: B018 - the welcome email goes to an administrator
    from onboarding.links import token_for_nonce
    from onboarding.models import Invitation

    invitation_send(tenant=c.contoso, acting_user=c.sdm)
    token = token_for_nonce(Invitation.objects.get(tenant=c.contoso).nonce)
    write = _admin_write(c, "onboarding:invitation", {}, token)
    write.method = "get"
    return write


def w_mfa_policy(c: Cast) -> Write:
    return _admin_write(c, "mfa_policy", {})  # the switch off


def w_member_sessions_end(c: Cast) -> Write:
    _signed_in(c.reader, "reader's laptop")
    write = _admin_write(c, "member_sessions_end", {}, Membership.objects.get(user=c.reader).pk)
    write.sessions = True
    return write


def _signed_in(user: User, agent: str, *, mfa: bool = True, reauth: bool = False) -> Client:
    """Signed in through the sign-in pages (allauth asks for a recent sign-in before a factor changes)."""
    client = Client(HTTP_USER_AGENT=agent, raise_request_exception=False)
    client.post(reverse("login"), {"login": user.email, "password": factories.PASSWORD})
    if mfa:
        client.post(reverse("mfa_authenticate"), {"code": fresh_totp_code(user)})
    assert "_auth_user_id" in client.session
    if reauth:  # allauth asks again before a factor changes
        if mfa:
            client.post(reverse("mfa_reauthenticate"), {"code": fresh_totp_code(user)})
        else:
            client.post(reverse("account_reauthenticate"), {"password": factories.PASSWORD})
    return client


def w_sessions_end(c: Cast) -> Write:
    _signed_in(c.admin, "phone")  # another session to end
    return Write(_signed_in(c.admin, "laptop"), reverse("usersessions_list"), c.contoso, sessions=True)


def w_sign_in(c: Cast) -> Write:
    member = factories.member(c.contoso, TenantRole.SECURITY_READER, "nomfa@contoso.example", mfa=False)
    data = {"login": member.email, "password": factories.PASSWORD}
    return Write(Client(raise_request_exception=False), reverse("login"), c.contoso, data, also=SIGN_IN_TABLES)


def w_mfa_authenticate(c: Cast) -> Write:
    client = Client(raise_request_exception=False)
    client.post(reverse("login"), {"login": c.admin.email, "password": factories.PASSWORD})
    data = {"code": fresh_totp_code(c.admin)}
    return Write(client, reverse("mfa_authenticate"), c.contoso, data, also=SIGN_IN_TABLES)


def w_sign_out(c: Cast) -> Write:
    write = _admin_write(c, "logout")
    write.sessions = True
    return write


def w_totp_activate(c: Cast) -> Write:
    member = factories.member(c.contoso, TenantRole.SECURITY_READER, "enrol@contoso.example", mfa=False)
    client = _signed_in(member, "laptop", mfa=False, reauth=True)
    client.get(reverse("mfa_activate_totp"))
    secret = client.session["mfa.totp.secret"]
    return Write(client, reverse("mfa_activate_totp"), c.contoso, {"code": factories.totp_code(secret)})


def w_totp_deactivate(c: Cast) -> Write:
    return Write(_signed_in(c.reader, "laptop", reauth=True), reverse("mfa_deactivate_totp"), c.contoso)


def w_recovery_codes(c: Cast) -> Write:
    return Write(_signed_in(c.admin, "laptop", reauth=True), reverse("mfa_generate_recovery_codes"), c.contoso)


def _passkey(user: User) -> Authenticator:
    """A stored passkey (its data is never checked by removing or renaming it)."""
    return Authenticator.objects.create(
        user=user, type=Authenticator.Type.WEBAUTHN, data={"name": "Key", "credential": {}, "passwordless": False}
    )


def w_passkey_remove(c: Cast) -> Write:
    key = _passkey(c.admin)
    return Write(_signed_in(c.admin, "laptop", reauth=True), reverse("mfa_remove_webauthn", args=[key.pk]), c.contoso)


def w_passkey_rename(c: Cast) -> Write:
    key = _passkey(c.admin)
    url = reverse("mfa_edit_webauthn", args=[key.pk])
    return Write(_signed_in(c.admin, "laptop", reauth=True), url, c.contoso, {"name": "Work laptop"})


def w_outbox_retry(c: Cast) -> Write:
    return _sdm_write(c, "outbox:retry", {"attempts": "3"}, _failed_message(c).pk)


def w_invite(c: Cast) -> Write:
    c.admin  # noqa: B018 - the tenant needs an admin to invite
    return _sdm_write(c, "onboarding_provider:invite", {}, c.contoso.pk)


def w_resend(c: Cast) -> Write:
    c.admin  # noqa: B018 - the welcome email goes to an administrator
    invitation_send(tenant=c.contoso, acting_user=c.sdm)
    return _sdm_write(c, "onboarding_provider:resend", {}, c.contoso.pk)


def w_expert_attempt(c: Cast) -> Write:
    factories.devices(c.contoso, 1, prefix="lap")
    write = _sdm_write(
        c, "permissions_provider:tenant", {"action": "run_antivirus_scan", "device": "lap-000000"}, str(c.contoso.pk)
    )
    write.attempt = True
    return write


def w_start_monitoring(c: Cast) -> Write:
    Tenant.objects.filter(pk=c.contoso.pk).update(service_phase=ServicePhase.PREPARING)
    return _sdm_write(c, "readiness_provider:start_monitoring", {"reason": "Pilot agreed"}, c.contoso.pk)


def w_confirm_active(c: Cast) -> Write:
    from django.conf import settings

    days = settings.READINESS_MONITORING_DAYS + 1
    Tenant.objects.filter(pk=c.contoso.pk).update(
        service_phase=ServicePhase.MONITORING, service_phase_changed_at=timezone.now() - timedelta(days=days)
    )
    return _sdm_write(c, "readiness_provider:confirm_active", {}, c.contoso.pk)


WRITES: dict[str, Callable[[Cast], Write]] = {
    "permissions:levels": w_levels,
    "permissions:renew": w_renew,
    "permissions:remove": w_remove,
    "permissions:restore": w_restore,
    "contacts:add": w_contact_add,
    "contacts:remove": w_contact_remove,
    "contacts:move": w_contact_move,
    "contacts:phone": w_contact_phone,
    "contacts:send_test": w_contact_send_test,
    "contacts:retry_email": w_contact_retry_email,
    "readiness:request_refresh": w_request_refresh,
    "environment:devices": w_devices,
    "environment:domain_controller_sensor": w_sensor,
    "environment:directory_user_create": w_user_create,
    "environment:directory_group_create": w_group_create,
    "environment:directory_user_enabled": w_user_enabled,
    "environment:directory_user_delete": w_user_delete,
    "environment:directory_user_high_value": w_user_high_value,
    "exclusions:add": w_exclusions_add,
    "exclusions:remove": w_exclusions_remove,
    "exclusions:high_value": w_exclusions_high_value,
    "environment:settings": w_setting,
    "environment:licences": w_licence,
    "onboarding:step": w_guide_step,
    "onboarding:get_started": w_get_started,
    "onboarding:overview": w_overview,
    "onboarding:invitation": w_invitation,
    "mfa_policy": w_mfa_policy,
    "member_sessions_end": w_member_sessions_end,
    "usersessions_list": w_sessions_end,
    "login": w_sign_in,
    "account_login": w_sign_in,
    "mfa_authenticate": w_mfa_authenticate,
    "logout": w_sign_out,
    "account_logout": w_sign_out,
    "mfa_activate_totp": w_totp_activate,
    "mfa_deactivate_totp": w_totp_deactivate,
    "mfa_generate_recovery_codes": w_recovery_codes,
    "mfa_remove_webauthn": w_passkey_remove,
    "mfa_edit_webauthn": w_passkey_rename,
    "outbox:retry": w_outbox_retry,
    "onboarding_provider:invite": w_invite,
    "onboarding_provider:resend": w_resend,
    "permissions_provider:tenant": w_expert_attempt,
    "readiness_provider:start_monitoring": w_start_monitoring,
    "readiness_provider:confirm_active": w_confirm_active,
}

# Routes that change nothing: ``GET_ONLY`` pages read (a POST to them writes nothing: checked), the others write
# only the session or a cookie (checked: their SQL touches nothing outside SESSION_TABLES).
GET_ONLY = "reads only"


def n_switch(c: Cast) -> Write:
    return Write(c.client(c.admin), reverse("switch_tenant"), None, {"tenant": str(c.contoso.pk)})


def n_confirm_password(c: Cast) -> Write:
    data = {"password": factories.PASSWORD, "code": fresh_totp_code(c.admin), "next": "/"}
    return Write(c.client(c.admin), reverse("confirm_password"), None, data)


def n_reauthenticate(c: Cast) -> Write:
    return Write(c.client(c.admin), reverse("account_reauthenticate"), None, {"password": factories.PASSWORD})


def n_mfa_reauthenticate(c: Cast) -> Write:
    return Write(c.client(c.admin), reverse("mfa_reauthenticate"), None, {"code": fresh_totp_code(c.admin)})


def n_theme(c: Cast) -> Write:
    return Write(c.client(c.admin), reverse("set_theme"), None, {"theme": "dark"})


def n_navigation(c: Cast) -> Write:
    return Write(c.client(c.admin), reverse("set_navigation"), None, {"nav": "collapsed"})


def n_passkey_add(c: Cast) -> Write:
    # Without a credential the form is refused: nothing is written. Adding a passkey is a write of
    # ``mfa_authenticator``, audited by the same handler as every other factor (see tests/test_mfa_browser.py).
    return Write(c.client(c.admin), reverse("mfa_add_webauthn"), None, {"name": "Key", "credential": "{}"})


NOT_WRITES: dict[str, str | Callable[[Cast], Write]] = {
    "home": GET_ONLY,
    "exclusions:index": GET_ONLY,
    "favicon": GET_ONLY,
    "healthz": GET_ONLY,
    "readyz": GET_ONLY,
    "account_inactive": GET_ONLY,
    "mfa_index": GET_ONLY,
    "mfa_view_recovery_codes": GET_ONLY,
    "mfa_download_recovery_codes": GET_ONLY,
    "mfa_list_webauthn": GET_ONLY,
    "onboarding:index": GET_ONLY,
    "permissions:index": GET_ONLY,
    "contacts:index": GET_ONLY,
    "contacts:search": GET_ONLY,
    "readiness:service_status": GET_ONLY,
    "readiness:export": GET_ONLY,
    "readiness:devices": GET_ONLY,
    "readiness:domain_controllers": GET_ONLY,
    "readiness:identities": GET_ONLY,
    "audit:log": GET_ONLY,
    "audit:export": GET_ONLY,
    "environment:overview": GET_ONLY,
    "environment:domain_controllers": GET_ONLY,
    "environment:directory": GET_ONLY,
    "outbox:list": GET_ONLY,
    "outbox:detail": GET_ONLY,
    "outbox:html": GET_ONLY,
    "onboarding_provider:console": GET_ONLY,
    "onboarding_provider:tenant": GET_ONLY,
    "permissions_provider:access": GET_ONLY,
    "readiness_provider:runs": GET_ONLY,
    "readiness_provider:tenant": GET_ONLY,
    "switch_tenant": n_switch,
    "confirm_password": n_confirm_password,
    "account_reauthenticate": n_reauthenticate,
    "mfa_reauthenticate": n_mfa_reauthenticate,
    "mfa_reauthenticate_webauthn": GET_ONLY,
    "mfa_add_webauthn": n_passkey_add,
    "set_theme": n_theme,
    "set_navigation": n_navigation,
}


def _route_names() -> list[str]:
    """``namespace:name`` of every route outside the Django admin."""
    names: list[str] = []

    def walk(patterns: list[Any], namespace: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.namespace == "admin":
                    continue
                walk(p.url_patterns, f"{namespace}{p.namespace}:" if p.namespace else namespace)
            elif isinstance(p, URLPattern):
                assert p.name, f"an unnamed route can't be classified: {p.pattern}"
                names.append(namespace + p.name)

    walk(get_resolver().url_patterns, "")
    return names


def test_every_route_is_classified() -> None:
    names = set(_route_names())
    assert not set(WRITES) & set(NOT_WRITES)
    unclassified = names - set(WRITES) - set(NOT_WRITES)
    assert not unclassified, f"classify these routes in tests/test_audit_by_construction.py: {sorted(unclassified)}"
    assert not (set(WRITES) | set(NOT_WRITES)) - names, "routes listed here that no longer exist"


# --- Checking a write ----------------------------------------------------------------------------------------------


def _written_tables(queries: list[dict[str, str]]) -> set[str]:
    return {m.group(1) for q in queries if (m := WRITE_SQL.match(q["sql"]))}


def _portal_tables() -> list[str]:
    return sorted(
        m._meta.db_table for m in apps.get_models(include_auto_created=True) if m._meta.db_table not in SESSION_TABLES
    )


def _fingerprint(tables: list[str]) -> dict[str, str]:
    """Every row of every table, hashed: equal before and after means nothing changed."""
    out = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM \"{table}\" t")  # noqa: S608 - model table names
            out[table] = cursor.fetchone()[0]
    return out


@pytest.fixture
def cast(request: pytest.FixtureRequest) -> Cast:
    return Cast(request)


@pytest.mark.parametrize("name", sorted(WRITES))
def test_a_write_is_audited_in_its_tenants_log(cast: Cast, name: str) -> None:
    write = WRITES[name](cast)
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    with CaptureQueriesContext(connection) as ctx:
        response = write.send()
    assert response.status_code in (200, 302), (name, response.status_code, response.content[:500])
    changed = _written_tables(ctx.captured_queries) - (set() if write.sessions else SESSION_TABLES)
    if not write.attempt:
        changed.discard("audit_auditevent")
    assert changed, f"{name}: the request changed nothing; the case must make a real write"
    events = list(AuditEvent.objects.filter(id__gt=before))
    assert events, f"{name} changed {sorted(changed)} without an audit row"
    assert {e.tenant_id for e in events} == {write.log()}, (name, events)


@pytest.mark.parametrize("name", sorted(WRITES))
def test_a_write_and_its_audit_row_commit_together(cast: Cast, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    write = WRITES[name](cast)
    tables = [t for t in _portal_tables() if t not in write.also]
    before = _fingerprint(tables)
    create = AuditEvent.objects.create

    def fail_after_insert(**kwargs: Any) -> AuditEvent:
        create(**kwargs)
        raise RuntimeError("the audit trail is unavailable")

    monkeypatch.setattr(AuditEvent.objects, "create", fail_after_insert)
    response = write.send()
    assert response.status_code == 500, (name, response.status_code)
    after = _fingerprint(tables)
    assert {t for t in tables if before[t] != after[t]} == set(), f"{name}: committed without its audit row"


@pytest.mark.parametrize("name", sorted(n for n, v in NOT_WRITES.items() if v is not GET_ONLY))
def test_a_route_said_not_to_write_writes_only_the_session(cast: Cast, name: str) -> None:
    case = NOT_WRITES[name]
    assert callable(case)
    write = case(cast)
    with CaptureQueriesContext(connection) as ctx:
        response = write.send()
    assert response.status_code < 500, (name, response.status_code)
    assert _written_tables(ctx.captured_queries) <= SESSION_TABLES | SIGN_IN_TABLES, name


@pytest.mark.parametrize("name", sorted(n for n, v in NOT_WRITES.items() if v is GET_ONLY))
def test_a_read_only_route_writes_nothing_when_posted_to(cast: Cast, name: str) -> None:
    route = next(p for p in _patterns() if p[0] == name)[1]
    client = cast.client(
        cast.sdm if name.split(":")[0].endswith("_provider") or name.startswith("outbox") else cast.admin
    )
    url = "/" + re.sub(r"<(?:\w+:)?(\w+)>", "1", route)
    with CaptureQueriesContext(connection) as ctx:
        response = client.post(url, {})
    assert response.status_code < 500, (name, url, response.status_code)
    assert _written_tables(ctx.captured_queries) <= SESSION_TABLES, name


def _patterns() -> Iterator[tuple[str, str]]:
    def walk(patterns: list[Any], namespace: str, prefix: str) -> Iterator[tuple[str, str]]:
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.namespace != "admin":
                    ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                    yield from walk(p.url_patterns, ns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield namespace + str(p.name), prefix + str(p.pattern)

    return walk(get_resolver().url_patterns, "", "")


# --- The Django admin ----------------------------------------------------------------------------------------------


@pytest.fixture
def operator_user(db: Any) -> User:
    user = User.objects.create_superuser(email="ops@portal.example", password=factories.PASSWORD, display_name="Ops")
    return factories.enrol_totp(user)


def _action(c: Cast, model: Any, action: str, obj: Any) -> Write:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    data = {"action": action, "_selected_action": [obj.pk], "index": "0", "post": "yes"}
    return Write(c.client(c.operator_user), url, obj.tenant, data)


def a_device(action: str) -> Callable[[Cast], Write]:
    def case(c: Cast) -> Write:
        device = factories.devices(c.contoso, 1, onboarded=action != "onboard")[0]
        if action == "set_active":
            Device.objects.filter(pk=device.pk).update(av_mode="passive")
        return _action(c, Device, action, device)

    return case


def a_dc(action: str) -> Callable[[Cast], Write]:
    def case(c: Cast) -> Write:
        dc = factories.domain_controller(c.contoso, "CTS-DC02", sensor=action == "uninstall_sensor")
        return _action(c, DomainController, action, dc)

    return case


def a_directory_user(action: str) -> Callable[[Cast], Write]:
    def case(c: Cast) -> Write:
        person = factories.directory_user(c.contoso, "Diego Siciliani", enabled=action != "enable")
        return _action(c, DirectoryUser, action, person)

    return case


def a_form(
    name: str,
    data: Callable[[Cast], dict[str, Any]],
    obj: Callable[[Cast], Any] | None = None,
    created: Callable[[], Tenant | None] | None = None,
) -> Callable[[Cast], Write]:
    def case(c: Cast) -> Write:
        args = [obj(c).pk] if obj else []
        url = reverse(f"admin:{name}", args=args)
        return Write(c.client(c.operator_user), url, c.contoso, data(c), created=created)

    return case


def _tenant_form(c: Cast, domain: str | None = None) -> dict[str, Any]:
    t = c.contoso
    return {
        "name": "Contoso Ltd",
        "primary_domain": domain or t.primary_domain,
        "provider": t.provider_id,
        "service_phase": t.service_phase,
        "require_mfa_for_admins": "on",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }


ADMIN_WRITES: dict[str, Callable[[Cast], Write]] = {
    "environment.Device:onboard": a_device("onboard"),
    "environment.Device:set_active": a_device("set_active"),
    "environment.Device:set_passive": a_device("set_passive"),
    "environment.Device:set_disabled": a_device("set_disabled"),
    "environment.DomainController:install_sensor": a_dc("install_sensor"),
    "environment.DomainController:uninstall_sensor": a_dc("uninstall_sensor"),
    "environment.DirectoryUser:enable": a_directory_user("enable"),
    "environment.DirectoryUser:disable": a_directory_user("disable"),
    "environment.DirectoryUser:delete_users": a_directory_user("delete_users"),
    "environment.SecuritySetting:add": a_form(
        "environment_securitysetting_add",
        lambda c: {"tenant": c.contoso.pk, "key": "mde.edr_block_mode", "value": "on"},
    ),
    "environment.SecuritySetting:change": a_form(
        "environment_securitysetting_change",
        lambda c: {"key": "mde.edr_block_mode", "value": "off"},
        lambda c: factories.setting(c.contoso, "mde.edr_block_mode", "on"),
    ),
    "environment.Licence:add": a_form(
        "environment_licence_add", lambda c: {"tenant": c.contoso.pk, "product": "mdi", "seats": "12"}
    ),
    "environment.Licence:change": a_form(
        "environment_licence_change",
        lambda c: {"product": "mdi", "seats": "40"},
        lambda c: factories.licence(c.contoso, "mdi", 10),
    ),
    "tenancy.User:add": a_form(
        "tenancy_user_add",
        lambda c: {
            "email": "new@contoso.example",
            "display_name": "New",
            "password1": "a-Long-passw0rd!",
            "password2": "a-Long-passw0rd!",
        },
        # A new account belongs to no tenant yet: its creation is in the operators' log (no tenant).
        created=lambda: None,
    ),
    "tenancy.User:change": a_form(
        "tenancy_user_change",
        lambda c: {"email": c.admin.email, "display_name": "Renamed", "is_active": "on"},
        lambda c: c.admin,
    ),
    "tenancy.User:password": a_form(
        "auth_user_password_change",
        lambda c: {"password1": "a-Long-passw0rd!", "password2": "a-Long-passw0rd!", "usable_password": "true"},
        lambda c: c.admin,
    ),
    "tenancy.Tenant:add": a_form(
        "tenancy_tenant_add",
        lambda c: _tenant_form(c, "northwind.example"),
        created=lambda: Tenant.objects.get(primary_domain="northwind.example"),
    ),
    "tenancy.Tenant:change": a_form("tenancy_tenant_change", _tenant_form, lambda c: c.contoso),
    "tenancy.Membership:add": a_form(
        "tenancy_membership_add",
        lambda c: {
            "tenant": c.contoso.pk,
            "user": factories.user("joiner@contoso.example").pk,
            "role": TenantRole.SECURITY_READER,
        },
    ),
    "tenancy.Membership:change": a_form(
        "tenancy_membership_change",
        lambda c: {"role": TenantRole.SECURITY_OPERATOR},
        lambda c: Membership.objects.get(user=c.reader),
    ),
    "tenancy.Membership:delete": a_form(
        "tenancy_membership_delete", lambda c: {"post": "yes"}, lambda c: Membership.objects.get(user=c.reader)
    ),
    "tenancy.Membership:delete_selected": lambda c: _action(
        c, Membership, "delete_selected", Membership.objects.get(user=c.reader)
    ),
}


def _admin_writes(user: User) -> set[str]:
    """Every way the admin lets an operator change data: actions, add, change and delete, per model."""
    request = RequestFactory().get("/")
    request.user = user
    found: set[str] = set()
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label
        found |= {f"{label}:{action}" for action in model_admin.get_actions(request)}
        if model_admin.has_add_permission(request):
            found.add(f"{label}:add")
        obj = model()
        obj.pk = 1
        if model_admin.has_change_permission(request, obj):
            found.add(f"{label}:change")
        if model_admin.has_delete_permission(request, obj):
            found.add(f"{label}:delete")
        if hasattr(model_admin, "user_change_password") and model_admin.has_change_permission(request, obj):
            found.add(f"{label}:password")
    return found


def test_every_admin_write_is_classified(operator_user: User) -> None:
    found = _admin_writes(operator_user)
    assert found - set(ADMIN_WRITES) == set(), "add a case to ADMIN_WRITES in tests/test_audit_by_construction.py"
    assert set(ADMIN_WRITES) - found == set(), "ADMIN_WRITES lists what the admin no longer offers"


@pytest.mark.parametrize("name", sorted(ADMIN_WRITES))
def test_an_admin_write_is_audited_in_its_tenants_log(cast: Cast, name: str) -> None:
    write = ADMIN_WRITES[name](cast)
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = write.send()
    assert response.status_code in (200, 302), (name, response.status_code)
    if response.status_code == 200:
        errors = re.findall(r'class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
        assert False, f"{name}: the admin refused the form: {errors}"
    events = list(AuditEvent.objects.filter(id__gt=before))
    assert events, f"{name}: changed without an audit row"
    assert {e.tenant_id for e in events} == {write.log()}, (name, [(e.tenant_id, e.action) for e in events])


@pytest.mark.parametrize("name", sorted(ADMIN_WRITES))
def test_an_admin_write_and_its_audit_row_commit_together(
    cast: Cast, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = ADMIN_WRITES[name](cast)
    tables = [t for t in _portal_tables() if t != "django_admin_log"]
    before = _fingerprint(tables)
    create = AuditEvent.objects.create

    def fail_after_insert(**kwargs: Any) -> AuditEvent:
        create(**kwargs)
        raise RuntimeError("the audit trail is unavailable")

    monkeypatch.setattr(AuditEvent.objects, "create", fail_after_insert)
    response = write.send()
    assert response.status_code == 500, (name, response.status_code)
    after = _fingerprint(tables)
    assert {t for t in tables if before[t] != after[t]} == set(), f"{name}: committed without its audit row"
