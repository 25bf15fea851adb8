"""Forms of the Environment area: input parsing and per-field messages only.

The rules live in ``environment.services``; a ``ValidationError`` raised
there is attached back to these forms so the page re-renders with it.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms

from environment.models import AntivirusMode, LicenceProduct
from environment.security_settings import SETTINGS_BY_KEY
from environment.services import MAX_ONBOARD_COUNT, MAX_SEATS
from tenancy.bounds import BoundedIntegerField

DEVICE_ACTIONS = {
    "onboard_selected": "Onboard selected",
    "onboard_matching": "Onboard all matching",
    "onboard_count": "Onboard a number of devices",
    "av_selected": "Set antivirus mode for selected",
    "av_matching": "Set antivirus mode for all matching",
    "high_value_selected": "Tag selected as high value",
    "high_value_clear_selected": "Remove the high-value tag from selected",
}

HIGH_VALUE_ACTIONS = ("high_value_selected", "high_value_clear_selected")


class DeviceActionForm(forms.Form):
    """The device list's bulk action bar. Which fields matter depends on the button pressed."""

    action = forms.ChoiceField(
        choices=list(DEVICE_ACTIONS.items()),
        error_messages={
            "required": "Choose one of the device actions.",
            "invalid_choice": "Choose one of the device actions.",
        },
    )
    count = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ONBOARD_COUNT,
        label="Number of devices",
        error_messages={
            "invalid": "Enter a whole number of devices.",
            "min_value": "Enter at least 1 device.",
            "max_value": f"Enter at most {MAX_ONBOARD_COUNT:,} devices.",
        },
    )
    mode = forms.ChoiceField(
        required=False,
        choices=[("", "Choose a mode"), *AntivirusMode.choices],
        label="Antivirus mode",
        error_messages={"invalid_choice": "Choose active, passive or disabled."},
    )

    # The devices' state the list showed (``DeviceCounts.version``): the "all matching" and "this many"
    # actions are refused if it changed (see ``devices_onboard``).
    devices_was = forms.CharField(required=False, max_length=100)

    def __init__(self, *args: Any, selected: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.selected = selected or []

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        action = data.get("action")
        if action in {"onboard_selected", "av_selected", *HIGH_VALUE_ACTIONS} and not self.selected:
            raise forms.ValidationError("Select at least one device first.", code="nothing_selected")
        if action == "onboard_count" and data.get("count") is None and "count" not in self.errors:
            self.add_error("count", "Enter how many devices to onboard.")
        if action in {"av_selected", "av_matching"} and not data.get("mode") and "mode" not in self.errors:
            self.add_error("mode", "Choose the antivirus mode to switch to.")
        return data


class SecuritySettingForm(forms.Form):
    key = forms.CharField(max_length=80)
    value = forms.CharField(max_length=80, error_messages={"required": "Choose a value."})
    # The value shown when the page was opened, to catch concurrent edits.
    expected = forms.CharField(max_length=80, required=False)

    def clean_key(self) -> str:
        key: str = self.cleaned_data["key"]
        if key not in SETTINGS_BY_KEY:
            raise forms.ValidationError(f"“{key}” isn't a known security setting.")
        return key

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        spec = SETTINGS_BY_KEY.get(data.get("key", ""))
        value = data.get("value")
        if spec is not None and value is not None and value not in dict(spec.choices):
            options = ", ".join(label for _, label in spec.choices)
            self.add_error("value", f"Choose one of: {options}.")
        return data


class LicenceSeatsForm(forms.Form):
    product = forms.ChoiceField(
        choices=LicenceProduct.choices, error_messages={"invalid_choice": "That isn't a licensed product."}
    )
    seats = forms.IntegerField(
        min_value=0,
        max_value=MAX_SEATS,
        error_messages={
            "required": "Enter a number of seats.",
            "invalid": "Enter a whole number of seats.",
            "min_value": "Seats can't be negative.",
            "max_value": f"Enter at most {MAX_SEATS:,} seats.",
        },
    )
    # The count shown when the page was opened, to catch concurrent edits.
    expected = BoundedIntegerField(required=False, min_value=0)


class DirectoryUserForm(forms.Form):
    display_name = forms.CharField(max_length=256, label="Display name")
    user_principal_name = forms.EmailField(
        max_length=256,
        label="User principal name",
        error_messages={"invalid": "Enter a user principal name like name@contoso.example."},
    )
    mail = forms.EmailField(max_length=254, required=False, label="Mail")
    job_title = forms.CharField(max_length=128, required=False, label="Job title")
    domain_controller = forms.ChoiceField(required=False, label="Domain controller (hybrid identity)")

    def __init__(self, *args: Any, domain_controllers: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        # Distinct element ids: the user and group forms share a page.
        kwargs.setdefault("auto_id", "user_%s")
        super().__init__(*args, **kwargs)
        field = cast(forms.ChoiceField, self.fields["domain_controller"])
        field.choices = [("", "None (cloud-only account)"), *(domain_controllers or [])]


class DirectoryGroupForm(forms.Form):
    display_name = forms.CharField(max_length=256, label="Group name")
    mail = forms.EmailField(max_length=254, required=False, label="Mail")
    mail_enabled = forms.BooleanField(required=False, label="Mail-enabled")
    security_enabled = forms.BooleanField(required=False, initial=True, label="Security group")
    description = forms.CharField(max_length=500, required=False, label="Description")
    members = forms.CharField(
        max_length=10_000,
        required=False,
        label="Members",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="User principal names, one per line or separated by commas.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "group_%s")
        super().__init__(*args, **kwargs)

    def clean_members(self) -> list[str]:
        raw = self.cleaned_data.get("members") or ""
        return [upn for upn in (part.strip() for part in raw.replace(",", "\n").splitlines()) if upn]
