from django.urls import path

from tenancy.interim import interim_view

app_name = "permissions_provider"

urlpatterns = [
    path("access/", interim_view("access"), name="access"),
]
