from django.urls import path

from tenancy.interim import interim_view

app_name = "onboarding"

urlpatterns = [
    path("", interim_view("index"), name="index"),
    path("get-started/", interim_view("get_started"), name="get_started"),
]
