from django.urls import path

from environment import views

app_name = "environment"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("devices/", views.devices, name="devices"),
    path("domain-controllers/", views.domain_controllers, name="domain_controllers"),
    path("domain-controllers/<int:pk>/sensor/", views.domain_controller_sensor, name="domain_controller_sensor"),
    path("directory/", views.directory, name="directory"),
    path("directory/users/new/", views.directory_user_create, name="directory_user_create"),
    path("directory/groups/new/", views.directory_group_create, name="directory_group_create"),
    path("directory/users/<int:pk>/enabled/", views.directory_user_enabled, name="directory_user_enabled"),
    path("directory/users/<int:pk>/high-value/", views.directory_user_high_value, name="directory_user_high_value"),
    path("directory/users/<int:pk>/delete/", views.directory_user_delete, name="directory_user_delete"),
    path("settings/", views.security_settings, name="settings"),
    path("licences/", views.licences, name="licences"),
]
