from django.urls import path

from readiness import views

app_name = "readiness"

urlpatterns = [
    path("", views.service_status, name="service_status"),
    path("refresh/", views.request_refresh, name="request_refresh"),
    path("export.csv", views.export_csv, name="export"),
    path("devices/<slug:state>/", views.device_list, name="devices"),
    path("domain-controllers/<slug:state>/", views.domain_controller_list, name="domain_controllers"),
    path("identities/<slug:state>/", views.identity_list, name="identities"),
]
