"""Forms of the notification contacts page. They bound and read the input; the services decide."""

from __future__ import annotations

from django import forms

from contacts.selectors import PickerState, picker_state
from core.errors import ApplicationError, Invalid
from tenancy.bounds import parse_id
from tenancy.models import Tenant


class AddContactForm(forms.Form):
    """The picker's Add: every field optional here, so a refusal from ``contact_add``
    re-renders the form with exactly what the admin chose and typed."""

    notification_type = forms.CharField(required=False, max_length=40)
    # "user:12" or "group:7", from the search results.
    entry = forms.CharField(required=False, max_length=64)
    # The older field names, still accepted from links and scripts.
    directory_user_id = forms.CharField(required=False, max_length=40)
    directory_group_id = forms.CharField(required=False, max_length=40)
    phone = forms.CharField(required=False, max_length=64, strip=True)
    q = forms.CharField(required=False, max_length=200, strip=False)
    next = forms.CharField(required=False, max_length=2000)

    def entry_ids(self) -> tuple[str | None, str | None]:
        """(directory user id, directory group id) as chosen; the service refuses anything but exactly one."""
        data = self.cleaned_data
        kind, _, pk = (data.get("entry") or "").partition(":")
        if kind == "user" and pk:
            return pk, None
        if kind == "group" and pk:
            return None, pk
        return data.get("directory_user_id") or None, data.get("directory_group_id") or None

    def entry_value(self) -> str:
        """The chosen entry as the picker's value ("user:12"), whichever field carried it."""
        user_id, group_id = self.entry_ids()
        if user_id and parse_id(user_id) is not None:
            return f"user:{parse_id(user_id)}"
        if group_id and parse_id(group_id) is not None:
            return f"group:{parse_id(group_id)}"
        return ""

    def picker(self, *, tenant: Tenant, error: ApplicationError) -> PickerState:
        """The form as the admin submitted it, with ``error`` next to the field it is about."""
        valid = self.is_valid()
        data = self.cleaned_data if valid else {}
        # Only an over-long value makes the form itself invalid; say which.
        errors = dict(error.fields) if isinstance(error, Invalid) else {}
        if not valid:
            errors = {k: [str(m) for m in v] for k, v in self.errors.items()}
        return picker_state(
            tenant=tenant,
            q=str(data.get("q") or ""),
            entry=self.entry_value() if valid else "",
            notification_type=str(data.get("notification_type") or ""),
            phone=str(data.get("phone") or ""),
            errors=errors,
            error="" if errors else error.message,
        )
