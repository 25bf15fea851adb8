from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from ui.preferences import THEMES, nav_collapsed, theme_for


def initials(name: str) -> str:
    """ "Ava Kowalski" -> "AK", "admin@contoso.example" -> "A": the avatar in the header."""
    words = [w for w in name.replace("@", " ").replace(".", " ").split() if w[:1].isalpha()]
    if not words:
        return "?"
    if "@" in name or len(words) == 1:
        return words[0][0].upper()
    return (words[0][0] + words[-1][0]).upper()


# The Microsoft Defender portal's areas above System, in its order, with the Fluent icon each uses.
OUTSIDE_AREAS: tuple[tuple[str, str], ...] = (
    ("Home", "home"),
    ("Exposure management", "target_arrow"),
    ("Investigation & response", "shield"),
    ("Threat intelligence", "globe_shield"),
    ("Assets", "building"),
    ("Endpoints", "laptop"),
    ("Email & collaboration", "mail"),
    ("Cloud apps", "cloud"),
    ("Identities", "person"),
    ("Reports", "data_bar_vertical"),
)


def shell(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    name = ""
    if user is not None and user.is_authenticated:
        name = getattr(user, "display_name", "") or user.get_username()
    return {
        "ui_theme": theme_for(request),
        "ui_themes": THEMES,
        "ui_nav_collapsed": nav_collapsed(request),
        "ui_user_initials": initials(name) if name else "",
        "outside_areas": OUTSIDE_AREAS,
    }
