from allauth.account import views as account_views
from django.urls import include, path

from tenancy import views

urlpatterns = [
    # allauth's sign-in (password, then the second factor) and sign-out, under
    # the portal's paths; each also answers to allauth's own URL name.
    path("sign-in/", account_views.login, name="login"),
    path("sign-in/", account_views.login, name="account_login"),
    path("sign-out/", account_views.logout, name="logout"),
    path("sign-out/", account_views.logout, name="account_logout"),
    path("account/inactive/", account_views.account_inactive, name="account_inactive"),
    path("account/reauthenticate/", account_views.reauthenticate, name="account_reauthenticate"),
    # The portal's versions of two allauth pages come first, under allauth's URL names.
    path("account/two-factor/", views.multi_factor, name="mfa_index"),
    path("account/two-factor/", include("allauth.mfa.urls")),
    path("account/sessions/", views.signed_in_sessions, name="usersessions_list"),
    path("account/sessions/members/<int:membership_id>/end/", views.member_sessions_end, name="member_sessions_end"),
    # Outside the enrolment pages: an admin who must enrol can't switch the rule off instead.
    path("account/organization/multi-factor/", views.mfa_policy, name="mfa_policy"),
    path("account/switch-organization/", views.switch_tenant, name="switch_tenant"),
    path("account/confirm-password/", views.confirm_password, name="confirm_password"),
]
