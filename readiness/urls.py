from django.urls import path

from tenancy.interim import interim_view

app_name = "readiness"

urlpatterns = [
    path("", interim_view("service_status"), name="service_status"),
]
