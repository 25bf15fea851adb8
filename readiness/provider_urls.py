from django.urls import path

from tenancy.interim import interim_view

app_name = "readiness_provider"

urlpatterns = [
    path("readiness-runs/", interim_view("runs"), name="runs"),
]
