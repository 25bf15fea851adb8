from django.apps import AppConfig


class EnvironmentConfig(AppConfig):
    name = "environment"
    default_auto_field = "django.db.models.BigAutoField"
