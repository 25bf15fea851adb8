from django.urls import path

from permissions import provider_views

app_name = "permissions_provider"

urlpatterns = [
    path("access/", provider_views.access_list, name="access"),
    path("access/<str:tenant_id>/", provider_views.access_detail, name="tenant"),
]
