from typing import Any

from allauth.account import views as account_views
from allauth.mfa import urls as mfa_urls
from django.db import transaction
from django.urls import URLPattern, URLResolver, include, path

from tenancy import views


def _atomic(patterns: list[Any]) -> list[URLPattern | URLResolver]:
    """allauth's views, each request in one transaction.

    What they change (a session ended, a factor added) and the audit rows their
    signals write (``tenancy/auth_log.py``) then commit or roll back together.
    """
    out: list[URLPattern | URLResolver] = []
    for p in patterns:
        if isinstance(p, URLResolver):
            out.append(path(str(p.pattern), include(_atomic(p.url_patterns))))
        else:
            out.append(path(str(p.pattern), transaction.atomic(p.callback), p.default_args, name=p.name))
    return out


login = transaction.atomic(account_views.login)
logout = transaction.atomic(account_views.logout)

urlpatterns = [
    # allauth's sign-in (password, then the second factor) and sign-out, under
    # the portal's paths; each also answers to allauth's own URL name.
    path("sign-in/", login, name="login"),
    path("sign-in/", login, name="account_login"),
    path("sign-out/", logout, name="logout"),
    path("sign-out/", logout, name="account_logout"),
    path("account/inactive/", account_views.account_inactive, name="account_inactive"),
    path("account/reauthenticate/", transaction.atomic(account_views.reauthenticate), name="account_reauthenticate"),
    # The portal's versions of some allauth pages come first, under allauth's URL names.
    path("account/two-factor/", views.multi_factor, name="mfa_index"),
    path("account/two-factor/totp/activate/", transaction.atomic(views.activate_totp), name="mfa_activate_totp"),
    path(
        "account/two-factor/recovery-codes/generate/",
        transaction.atomic(views.generate_recovery_codes),
        name="mfa_generate_recovery_codes",
    ),
    path("account/two-factor/", include(_atomic(mfa_urls.urlpatterns))),
    path("account/sessions/", transaction.atomic(views.signed_in_sessions), name="usersessions_list"),
    path("account/sessions/members/<int:membership_id>/end/", views.member_sessions_end, name="member_sessions_end"),
    # Outside the enrolment pages: an admin who must enrol can't switch the rule off instead.
    path("account/organization/multi-factor/", views.mfa_policy, name="mfa_policy"),
    path("account/switch-organization/", views.switch_tenant, name="switch_tenant"),
    path("account/confirm-password/", views.confirm_password, name="confirm_password"),
]
