"""The audit log reads as words: action names, field labels, and only the fields that changed."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from audit.presentation import ACTION_LABELS, FieldChange, action_label, field_changes
from permissions.selectors import access_levels_state
from permissions.services import access_levels_set, all_devices_set


def test_only_changed_fields_with_labels():
    before = {
        "state": "active",
        "all_devices": True,
        "levels": {"investigate": {"ends_at": "2026-12-01T10:00:00+00:00"}},
    }
    after = {
        "state": "active",
        "all_devices": False,
        "levels": {"investigate": {"ends_at": "2027-03-01T10:00:00+00:00"}},
    }
    assert field_changes(before, after) == [
        FieldChange("Access security data from all devices", "On", "Off"),
        FieldChange(
            "Access levels – Investigate incidents and guide my responses – End date",
            "1 Dec 2026, 10:00 UTC",
            "1 Mar 2027, 10:00 UTC",
        ),
    ]


def test_created_and_removed_fields_and_codes_as_words():
    assert field_changes(None, {"service_phase": "not_invited"}) == [FieldChange("Service phase", None, "Not invited")]
    assert field_changes({"phone": "+44 20 7946 0958"}, None) == [FieldChange("Phone number", "+44 20 7946 0958", None)]
    assert field_changes({"phone": ""}, {"phone": "+1 425 555 0100"}) == [
        FieldChange("Phone number", "—", "+1 425 555 0100")
    ]
    assert field_changes({"a": 1}, {"a": 1}) == []


def test_every_action_has_words_and_unknown_ones_still_read():
    assert all(label and label[0].isupper() for label in ACTION_LABELS.values())
    assert action_label("contacts.removed") == "Notification contact removed"
    assert action_label("billing.invoice_sent") == "Billing: invoice sent"


def test_every_action_recorded_in_the_code_has_a_label():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    recorded = set()
    for path in root.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        recorded |= set(re.findall(r'action="([a-z_]+\.[a-z_]+)"', path.read_text(encoding="utf-8")))
    missing = sorted(a for a in recorded - set(ACTION_LABELS) if not a.startswith("core."))
    assert not missing, f"add these to audit/presentation.py ACTION_LABELS: {missing}"


@pytest.mark.django_db
def test_the_page_shows_labels_not_keys(login, contoso, admin, secadmin):
    access_levels_set(tenant=contoso, acting_user=admin, investigate=True, respond=False, expected_version=1)
    v = access_levels_state(tenant=contoso).version
    all_devices_set(tenant=contoso, acting_user=secadmin, enabled=False, expected_version=v, confirm=True)
    html = login(admin).get(reverse("audit:log")).content.decode()
    assert "Access security data from all devices changed" in html
    assert re.search(
        r"<dt>Access security data from all devices</dt><dd><del[^>]*><span class=\"sr-only\">was </span>On</del>", html
    )
    assert '"all_devices"' not in html and ">all_devices<" not in html
    assert "<code>permissions." not in html
