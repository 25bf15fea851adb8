"""Display preferences kept in cookies, so the server renders them and no inline script is needed.

The theme is chosen in the user menu (a plain form) and the navigation is collapsed by a button; both are read here
and rendered as attributes on <html>, so the first paint is already right (no flash of the wrong theme).
"""

from __future__ import annotations

from typing import Final

from django.http import HttpRequest

THEME_COOKIE: Final = "portal_theme"
NAV_COOKIE: Final = "portal_nav"
# "system" follows prefers-color-scheme / prefers-contrast; the others pin a Fluent theme.
THEMES: Final[dict[str, str]] = {
    "system": "Use system setting",
    "light": "Light",
    "dark": "Dark",
    "high-contrast": "High contrast",
}
COOKIE_MAX_AGE: Final = 365 * 24 * 3600


def theme_for(request: HttpRequest) -> str:
    value = request.COOKIES.get(THEME_COOKIE, "system")
    return value if value in THEMES else "system"


def nav_collapsed(request: HttpRequest) -> bool:
    return request.COOKIES.get(NAV_COOKIE) == "collapsed"
