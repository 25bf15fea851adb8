from django.urls import path

from tenancy.interim import interim_view

app_name = "environment"

urlpatterns = [
    path("", interim_view("overview"), name="overview"),
]
