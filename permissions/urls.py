from django.urls import path

from tenancy.interim import interim_view

app_name = "permissions"

urlpatterns = [
    path("", interim_view("index"), name="index"),
]
