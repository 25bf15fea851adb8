from django.contrib import admin
from django.urls import include, path

from defender_portal.health import healthz, readyz
from tenancy import views as tenancy_views

urlpatterns = [
    path("", tenancy_views.home, name="home"),
    path("", include("tenancy.urls")),
    path("", include("ui.urls")),
    path("settings/defender-experts/", include("onboarding.urls")),
    path("settings/defender-experts/permissions/", include("permissions.urls")),
    path("settings/defender-experts/exclusions/", include("exclusions.urls")),
    path("settings/defender-experts/notification-contacts/", include("contacts.urls")),
    path("settings/defender-experts/service-status/", include("readiness.urls")),
    path("settings/defender-experts/audit-log/", include("audit.urls")),
    path("environment/", include("environment.urls")),
    path("provider/", include("outbox.urls")),
    path("provider/", include("onboarding.provider_urls")),
    path("provider/", include("permissions.provider_urls")),
    path("provider/", include("readiness.provider_urls")),
    path("django-admin/", admin.site.urls),
    # Answered by HealthCheckMiddleware before any other middleware; listed for reverse().
    path("healthz/", healthz, name="healthz"),
    path("readyz/", readyz, name="readyz"),
]

handler403 = "tenancy.views.forbidden"
handler404 = "tenancy.views.not_found"
