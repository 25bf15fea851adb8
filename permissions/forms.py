"""Forms of the Permissions page. They validate input only; the services decide."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import forms
from django.utils import timezone

from permissions.durations import DEFAULT_DURATION, MAX_DURATION, Duration, end_for
from permissions.evaluator import DEVICE_ACTIONS, USER_RESPONSE_ACTIONS, ExpertAction
from tenancy.bounds import BoundedDateField, BoundedIntegerField


class VersionedForm(forms.Form):
    version = BoundedIntegerField(min_value=1, widget=forms.HiddenInput)
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)
    # Several forms share one page: distinct id prefixes keep every id unique.
    id_prefix = "f"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", f"{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)


class DurationMixin(forms.Form):
    # A renewal counts durations from the grant's current end (set by RenewForm).
    extend_from: datetime | None = None

    # Optional: the duration only matters when something is newly granted (the
    # page hides it otherwise), so a missing value means the default.
    duration = forms.ChoiceField(label="Duration", choices=Duration.choices, initial=DEFAULT_DURATION, required=False)
    custom_end = BoundedDateField(
        label="Custom end date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Access lasts through the end of this day (UTC), up to two years ahead.",
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if "duration" in self.errors:
            return data
        duration = data.get("duration") or DEFAULT_DURATION
        data["duration"] = duration
        custom: date | None = data.get("custom_end")
        if duration == Duration.CUSTOM and custom is None:
            self.add_error("custom_end", "Choose the end date, or pick one of the durations.")
            return data
        now = timezone.now()
        end = end_for(duration=duration, custom_end=custom, now=now, extend_from=self.extend_from)
        if end is None:
            latest = (now + MAX_DURATION).date()
            if duration == Duration.CUSTOM:
                self.add_error("custom_end", f"Choose a date after today and no later than {latest:%d %b %Y}.")
            else:
                self.add_error(
                    "duration",
                    f"That would end after {latest:%d %b %Y}, more than two years from today. "
                    "Choose a shorter duration or a custom end date.",
                )
        data["ends_at"] = end
        return data

    @property
    def ends_at(self) -> datetime | None:
        return self.cleaned_data.get("ends_at")


class LevelsForm(DurationMixin, VersionedForm):
    id_prefix = "levels"
    investigate = forms.BooleanField(
        label="Investigate incidents and guide my responses",
        required=False,
        widget=forms.CheckboxInput(attrs={"role": "switch", "data-level": "investigate"}),
    )
    respond = forms.BooleanField(
        label="Respond directly to active threats",
        required=False,
        widget=forms.CheckboxInput(attrs={"role": "switch", "data-level": "respond"}),
    )
    # The levels as the form showed them: a stale save is a harmless double submit
    # only if it changes nothing, and the end date it asks for matters only for
    # levels it turns on (see access_levels_set).
    investigate_was = forms.BooleanField(required=False, widget=forms.HiddenInput)
    respond_was = forms.BooleanField(required=False, widget=forms.HiddenInput)

    # Access security data from all devices, under the access levels and saved by the same Save. Only a form that
    # shows the switch says so (``all_devices_shown``): an unticked box is "off" only then.
    all_devices = forms.BooleanField(
        label="Access security data from all devices",
        required=False,
        widget=forms.CheckboxInput(attrs={"role": "switch", "data-all-devices": ""}),
    )
    all_devices_shown = forms.BooleanField(required=False, widget=forms.HiddenInput)

    @property
    def all_devices_choice(self) -> bool | None:
        return bool(self.cleaned_data.get("all_devices")) if self.cleaned_data.get("all_devices_shown") else None

    @property
    def levels_as_read(self) -> tuple[bool, bool] | None:
        if "investigate_was" not in self.data and "respond_was" not in self.data:
            return None  # an older page: every level on counts as turned on
        return bool(self.cleaned_data.get("investigate_was")), bool(self.cleaned_data.get("respond_was"))


class AllDevicesForm(VersionedForm):
    id_prefix = "alldevices"
    all_devices = forms.BooleanField(
        label="Access security data from all devices",
        required=False,
        widget=forms.CheckboxInput(attrs={"role": "switch"}),
    )


class RenewForm(DurationMixin, VersionedForm):
    """Extends a live grant: a duration is added to its end date as the form showed it.

    ``ends_was`` (that end date, carried by the form) makes the asked end the
    same however often the form is sent, so a resubmit is recognised as one
    (see ``access_grant_renew``) instead of extending the grant twice.
    """

    id_prefix = "renew"
    ends_was = forms.DateTimeField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, extend_from: datetime | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.extend_from = extend_from
        self.fields["duration"].label = "Extend by"

    def clean_ends_was(self) -> datetime | None:
        value: datetime | None = self.cleaned_data.get("ends_was")
        # A live grant ends within two years; anything else is not a date this page showed.
        if value is not None and abs(value - timezone.now()) > MAX_DURATION:
            # On the form, not the hidden field, so the page shows it.
            self.add_error(None, "This form is out of date. Reload the page and try again.")
            return None
        if value is not None:
            self.extend_from = value
        return value


class RemoveForm(VersionedForm):
    id_prefix = "remove"


class AttemptForm(forms.Form):
    action = forms.ChoiceField(
        label="Action",
        choices=[(a.value, a.label) for a in ExpertAction if a in DEVICE_ACTIONS or a in USER_RESPONSE_ACTIONS],
    )
    # A device action names a device; a user action names a user.
    device = forms.CharField(label="Device name", max_length=128, strip=True, required=False)
    user = forms.CharField(label="User principal name", max_length=256, strip=True, required=False)

    @property
    def on_user(self) -> bool:
        return self.cleaned_data.get("action") in USER_RESPONSE_ACTIONS

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "action" not in data:
            return data
        if self.on_user and not data.get("user"):
            self.add_error("user", "Enter the user principal name of the user to act on.")
        elif not self.on_user and not data.get("device"):
            self.add_error("device", "Enter the name of the device to act on.")
        return data


# The switches among the values carried back from the password prompt.
BOOLEAN_KEYS = frozenset({"investigate", "respond", "all_devices", "all_devices_shown"})


def prefill(params: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """Initial values carried back from the password prompt (GET, so nothing is applied until Save)."""
    out: dict[str, Any] = {}
    for key in keys:
        if key in params:
            value = params.get(key)
            out[key] = value in {"1", "on", "true"} if key in BOOLEAN_KEYS else value
    return out
