from django.urls import path

from readiness import views

app_name = "readiness_provider"

urlpatterns = [
    path("readiness-runs/", views.runs, name="runs"),
    path("readiness/tenants/<int:tenant_id>/", views.provider_tenant, name="tenant"),
    path("readiness/tenants/<int:tenant_id>/start-monitoring/", views.start_monitoring, name="start_monitoring"),
    path("readiness/tenants/<int:tenant_id>/confirm-active/", views.confirm_active, name="confirm_active"),
]
