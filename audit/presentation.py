"""How the audit log reads to a person: action names, field labels and a before -> after diff of what changed.

The rows keep the machine form (action codes, JSON before/after; the CSV export shows it as stored); this module only
renders it. A new action or field reads sensibly without an entry here (the code is turned into words), but the
entries give the seed document's own wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from core.phones import phone_display

ACTION_LABELS: Final[dict[str, str]] = {
    "auth.sign_in": "Signed in",
    "auth.sign_in_failed": "Sign-in failed",
    "auth.sign_out": "Signed out",
    "auth.locked_out": "Sign-in locked",
    "experts.session_started": "Expert signed in to act here",
    "experts.action_refused": "Expert action refused",
    "account.created": "Account created",
    "account.updated": "Account changed",
    "account.password_set": "Password set by an operator",
    "contacts.added": "Notification contact added",
    "contacts.removed": "Notification contact removed",
    "contacts.reordered": "Call order changed",
    "contacts.phone_changed": "Phone number changed",
    "contacts.test_sent": "Test notification sent",
    "contacts.email_retried": "Email to a contact retried",
    "onboarding.welcome_sent": "Welcome email sent",
    "onboarding.welcome_resent": "Welcome email sent again",
    "onboarding.welcome_link_opened": "Welcome email link opened",
    "onboarding.guide_started": "Get started guide started",
    "onboarding.guide_step_completed": "Get started step completed",
    "onboarding.guide_finished": "Get started guide finished",
    "onboarding.guide_closed": "Get started guide closed",
    "exclusions.device_groups_added": "Device groups excluded from remediation",
    "exclusions.device_group_removed": "Device group removed from the exclusions",
    "exclusions.user_groups_added": "User groups excluded from remediation",
    "exclusions.user_group_removed": "User group removed from the exclusions",
    "exclusions.high_value_changed": "Exclusion of high-value devices and users changed",
    "exclusions.guide_confirmed": "Exclusions confirmed in the Get started guide",
    "exclusions.guide_discarded": "Exclusions added in the Get started guide discarded",
    "permissions.provider_access_granted": "Service provider access granted",
    "permissions.provider_access_removed": "Service provider access removed",
    "permissions.provider_access_restored": "Service provider access restored",
    "permissions.level_granted": "Access level granted",
    "permissions.level_revoked": "Access level turned off",
    "permissions.level_renewed": "Access level renewed",
    "permissions.level_expired": "Access level ended",
    "permissions.all_devices_changed": "Access security data from all devices changed",
    "permissions.expiry_reminder_queued": "End date reminder sent",
    "permissions.expert_action_refused": "Expert action refused",
    "readiness.refresh_requested": "Readiness refresh requested",
    "readiness.monitoring_started": "Monitoring phase started",
    "readiness.regression_detected": "Readiness regression detected",
    "tenant.phase_changed": "Service phase changed",
    "tenant.created": "Organisation created",
    "tenant.updated": "Organisation details changed",
    "tenant.member_added": "Member added",
    "tenant.member_role_changed": "Member's role changed",
    "tenant.member_removed": "Member removed",
    "tenant.member_signed_out": "Member signed out everywhere",
    "tenant.mfa_requirement_changed": "Multi-factor sign-in rule changed",
    "environment.demo_seeded": "Demo environment created",
    "environment.devices_onboarded": "Devices onboarded",
    "environment.devices_antivirus_mode_set": "Antivirus mode changed",
    "environment.security_setting_set": "Security setting changed",
    "environment.licence_seats_set": "Licence seats changed",
    "environment.sensor_installed": "Defender for Identity sensor installed",
    "environment.sensor_uninstalled": "Defender for Identity sensor removed",
    "environment.directory_user_created": "Directory user created",
    "environment.directory_user_deleted": "Directory user deleted",
    "environment.directory_user_enabled": "Directory user enabled",
    "environment.directory_user_disabled": "Directory user disabled",
    "environment.directory_users_enabled": "Directory users enabled",
    "environment.directory_users_disabled": "Directory users disabled",
    "environment.directory_group_created": "Directory group created",
    "environment.devices_high_value_set": "Devices tagged as high value",
    "environment.devices_high_value_cleared": "High-value tag removed from devices",
    "environment.directory_user_high_value_set": "Directory user tagged as high value",
    "environment.directory_user_high_value_cleared": "High-value tag removed from a directory user",
    "auth.other_sessions_ended": "Signed out of other sessions",
    "outbox.message_retried": "Failed email retried",
}

FIELD_LABELS: Final[dict[str, str]] = {
    "state": "State",
    "all_devices": "Access security data from all devices",
    "levels": "Access levels",
    "investigate": "Investigate incidents and guide my responses",
    "respond": "Respond directly to active threats",
    "role": "Role",
    "ends_at": "End date",
    "starts_at": "Start date",
    "expires_at": "Link expires",
    "notification_type": "Notification type",
    "kind": "Person or team",
    "display_name": "Name",
    "email": "Email",
    "phone": "Phone number",
    "position": "Call order",
    "order": "Call order",
    "service_phase": "Service phase",
    "reason": "Reason",
    "recipients": "Recipients",
    "revoked_links": "Earlier links revoked",
    "enabled": "Enabled",
    "seats": "Seats",
    "sensor_installed": "Sensor installed",
    "readiness_met": "Readiness met",
    "next_refresh_at": "Next refresh",
    "completed_steps": "Completed steps",
    "current_step": "Current step",
}

# Stored as codes, shown as words (not_invited -> Not invited).
_CODE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")
CODE_FIELDS: Final = frozenset({"state", "service_phase", "notification_type", "kind", "role", "current_step", "level"})


@dataclass(frozen=True)
class FieldChange:
    label: str
    before: str | None  # None: the field didn't exist before (created)
    after: str | None  # None: the field is gone after (removed)


def words(code: str) -> str:
    return code.replace("_", " ").replace(".", ": ").strip().capitalize()


def action_label(code: str) -> str:
    return ACTION_LABELS.get(code) or words(code)


def field_label(path: tuple[str, ...]) -> str:
    return " – ".join(FIELD_LABELS.get(part) or words(part) for part in path)


def display_value(key: str, value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "On" if value else "Off"
    if isinstance(value, list):
        return ", ".join(display_value(key, v) for v in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{field_label((k,))}: {display_value(k, v)}" for k, v in value.items()) or "—"
    if isinstance(value, str):
        if _ISO.match(value):
            try:
                return f"{datetime.fromisoformat(value).astimezone(UTC):%-d %b %Y, %H:%M} UTC"
            except ValueError:
                return value
        if key in CODE_FIELDS and _CODE.match(value):
            return words(value)
        if key == "phone":
            return phone_display(value)
    return str(value)


def _flatten(value: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(value, dict):
        out: dict[tuple[str, ...], Any] = {}
        for k, v in value.items():
            if isinstance(v, dict) and v:
                out.update(_flatten(v, (*prefix, str(k))))
            else:
                out[(*prefix, str(k))] = v
        return out
    return {prefix or ("value",): value}


def field_changes(before: Any, after: Any) -> list[FieldChange]:
    """The fields whose value differs, in the order they appear, labelled; unchanged fields are left out."""
    old = _flatten(before) if before is not None else {}
    new = _flatten(after) if after is not None else {}
    changes: list[FieldChange] = []
    for path in [*old, *(p for p in new if p not in old)]:
        in_old, in_new = path in old, path in new
        if in_old and in_new and old[path] == new[path]:
            continue
        key = path[-1]
        changes.append(
            FieldChange(
                label=field_label(path),
                before=display_value(key, old[path]) if in_old else None,
                after=display_value(key, new[path]) if in_new else None,
            )
        )
    return changes
