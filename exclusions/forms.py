"""Forms of the Exclusions page: input parsing only; the services decide."""

from __future__ import annotations

from typing import Any

from django import forms

from tenancy.bounds import BoundedIntegerField


class VersionedForm(forms.Form):
    version = BoundedIntegerField(min_value=1, widget=forms.HiddenInput)
    # Sent from the Get started guide's Exclusions step: what it adds can be discarded by the step's Skip.
    in_guide = forms.BooleanField(required=False, widget=forms.HiddenInput)
    # Where to go back to (the settings page or the guide's step); only this portal's own paths.
    next = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)

    def clean_next(self) -> str:
        value: str = self.cleaned_data.get("next") or ""
        # A path of this portal's Defender Experts settings, never another site (no "//host", no scheme).
        if not value.startswith("/settings/defender-experts/") or "//" in value or "\\" in value:
            return ""
        return value


class AddGroupsForm(VersionedForm):
    """The ticked groups themselves are read by the view (``group`` ids), which 404s a foreign one."""


class RemoveForm(VersionedForm):
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)


class HighValueForm(VersionedForm):
    exclude_high_value = forms.BooleanField(
        label="Exclude all high-value devices and users",
        required=False,
        widget=forms.CheckboxInput(attrs={"role": "switch"}),
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "hv_%s")
        super().__init__(*args, **kwargs)
