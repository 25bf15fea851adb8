from django.urls import path

from tenancy.interim import interim_view

app_name = "onboarding_provider"

urlpatterns = [
    path("onboarding/", interim_view("console"), name="console"),
]
