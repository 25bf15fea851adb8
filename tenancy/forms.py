from __future__ import annotations

from typing import Any

from allauth.account.forms import LoginForm
from django import forms
from django.contrib.auth import authenticate
from django.http import HttpRequest

from tenancy.bounds import IdField
from tenancy.mfa import code_authenticators, has_passkey, verify_code, verify_passkey


class SignInForm(LoginForm):
    """allauth's sign-in form with the portal's labels; the password reset link is not offered
    (the wording of its errors is the account adapter's, tenancy/mfa.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["login"].label = "Email"
        self.fields["login"].widget.attrs.update({"autocomplete": "username", "autofocus": True})
        self.fields["login"].widget.attrs.pop("placeholder", None)
        self.fields["password"].help_text = ""
        self.fields["password"].widget.attrs.pop("placeholder", None)


class ConfirmPasswordForm(forms.Form):
    password = forms.CharField(
        label="Password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )
    code = forms.CharField(
        label="Authenticator code",
        required=False,
        max_length=20,
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    # Filled by the browser when the user picks "Use a passkey" (static/js via allauth's webauthn.js).
    credential = forms.JSONField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        # With a second factor enrolled, a sensitive step asks for it too: a code, or a passkey if one is added.
        self.needs_code = bool(code_authenticators(request.user))
        self.has_passkey = has_passkey(request.user)
        if not self.needs_code:
            del self.fields["code"]
        if not self.has_passkey:
            del self.fields["credential"]

    @property
    def needs_second_factor(self) -> bool:
        return self.needs_code or self.has_passkey

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.needs_second_factor or self.errors:
            return data
        code = (data.get("code") or "").strip() if self.needs_code else ""
        credential = data.get("credential") if self.has_passkey else None
        if credential:
            if not verify_passkey(self.request, self.request.user, credential):
                self.add_error("credential", "That passkey wasn't accepted. Try again.")
        elif code:
            if not verify_code(self.request, self.request.user, code):
                self.add_error("code", "That code isn't right. Try again.")
        elif self.needs_code:
            self.add_error(
                "code",
                "Enter the code from your authenticator app, or use your passkey."
                if self.has_passkey
                else "Enter the code from your authenticator app.",
            )
        else:
            self.add_error("credential", "Use your passkey to continue.")
        return data

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        user = authenticate(self.request, username=self.request.user.get_username(), password=password)
        if user is None or user.pk != self.request.user.pk:
            raise forms.ValidationError("That password isn't right. Try again.")
        return password


class SwitchTenantForm(forms.Form):
    tenant = IdField()
