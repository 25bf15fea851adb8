from django.urls import path

from onboarding import views

app_name = "onboarding_provider"

urlpatterns = [
    path("onboarding/", views.console, name="console"),
    path("onboarding/tenants/<int:tenant_id>/", views.provider_tenant, name="tenant"),
    path("onboarding/tenants/<int:tenant_id>/invite/", views.invite, name="invite"),
    path("onboarding/tenants/<int:tenant_id>/resend/", views.resend, name="resend"),
]
