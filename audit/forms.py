from __future__ import annotations

from typing import Any

from django import forms

from audit.selectors import VIEWS, AuditFilters
from tenancy.bounds import BoundedDateField


class AuditFilterForm(forms.Form):
    view = forms.ChoiceField(required=False, choices=list(VIEWS.items()))
    category = forms.CharField(required=False, max_length=40)
    action = forms.CharField(required=False, max_length=80)
    actor = forms.CharField(required=False, max_length=254)
    q = forms.CharField(required=False, max_length=200, label="Search")
    date_from = BoundedDateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = BoundedDateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data: Any = None) -> None:
        # The query string uses "from"/"to"; map them onto the field names.
        if data is not None:
            data = data.copy()
            for short, name in (("from", "date_from"), ("to", "date_to")):
                if short in data and name not in data:
                    data[name] = data[short]
        super().__init__(data)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date must be on or after the start date.")
        return data

    def filters(self) -> AuditFilters:
        if not self.is_bound or not self.is_valid():
            # Invalid filters show the error and fall back to only the valid ones.
            cleaned = getattr(self, "cleaned_data", {}) or {}
        else:
            cleaned = self.cleaned_data
        return AuditFilters(
            view=cleaned.get("view") or "",
            category=(cleaned.get("category") or "").strip(),
            action=(cleaned.get("action") or "").strip(),
            actor=(cleaned.get("actor") or "").strip(),
            q=(cleaned.get("q") or "").strip(),
            date_from=cleaned.get("date_from") if "date_from" not in self.errors else None,
            date_to=cleaned.get("date_to") if "date_to" not in self.errors else None,
        )
