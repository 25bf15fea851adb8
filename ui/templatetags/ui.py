"""``{% icon "name" %}``: a Fluent System Icon from the vendored sprite (static/vendor/fluent/icons.svg)."""

from __future__ import annotations

from django import template
from django.templatetags.static import static
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def icon(name: str, css_class: str = "") -> str:
    # Decorative by default: the control that holds the icon carries the accessible name.
    return format_html(
        '<svg class="icon{}" aria-hidden="true" focusable="false"><use href="{}#{}"></use></svg>',
        f" {css_class}" if css_class else "",
        static("vendor/fluent/icons.svg"),
        name,
    )
