from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data (``seed_demo``) and realistic environments for tests and benchmarks.

    It sits on top of every other app: it creates tenants, people and
    environments through their models and services, and nothing imports it
    but tests, benchmarks and its own command.
    """

    name = "demo"
    default_auto_field = "django.db.models.BigAutoField"
