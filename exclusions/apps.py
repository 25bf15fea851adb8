from django.apps import AppConfig


class ExclusionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "exclusions"
    verbose_name = "Exclusions"
