from django.apps import AppConfig


class UiConfig(AppConfig):
    """The portal shell: icons, theme and navigation preferences, favicon. Imports no feature app."""

    name = "ui"
    verbose_name = "Portal shell"
