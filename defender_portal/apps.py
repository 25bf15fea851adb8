from django.contrib.admin.apps import AdminConfig

# Apps whose admins are ours (built on tenancy.admin_base); every other app's
# admin is made read-only, since its changes would bypass the audit trail.
PORTAL_APPS = frozenset(
    {"tenancy", "audit", "outbox", "environment", "onboarding", "permissions", "contacts", "readiness"}
)


class OperatorAdminConfig(AdminConfig):
    """``django.contrib.admin`` with the operators-only site (defender_portal/admin_site.py)."""

    default_site = "defender_portal.admin_site.OperatorAdminSite"

    def ready(self) -> None:
        super().ready()
        from defender_portal.admin_site import lock_down_third_party_admins

        lock_down_third_party_admins(PORTAL_APPS)
