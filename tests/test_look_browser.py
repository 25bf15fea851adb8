"""Every page, as a new user meets it, in Chromium: no sideways scroll from 320 px up, axe-core finds nothing in the
light, dark and high-contrast themes, and screenshots in light and dark at 1280 and 390 px.

"Every page" is found by following the links of the signed-in user's pages (the navigation, tables, cards), one page
per URL shape, so a page added later is checked without being listed here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings

from contacts.models import NotificationContact, NotificationType
from contacts.services import contact_add
from demo.seed import seed_demo
from environment.models import DirectoryUser
from readiness.services import readiness_state_for, readiness_sweep
from tenancy.models import ServicePhase, Tenant, User
from tests.conftest import complete_mfa
from ui.preferences import THEME_COOKIE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (320, 390, 768, 1280)
SHOT_WIDTHS = (1280, 390)
# Not pages: downloads, raw email previews, sign-out, one-time links, the Django admin.
SKIP = re.compile(r"(\.csv$|/html/$|/sign-out/|/invitation/|^/django-admin/|^/account/)")
MAX_PAGES = 60


@pytest.fixture
def demo(db: Any) -> Tenant:
    seed_demo(devices=120)
    contoso = Tenant.objects.get(primary_domain="contoso.example")
    admin = User.objects.get(email="admin@contoso.example")
    # At least two incident contacts (so the call order and its arrows show) with phone numbers, and a service
    # review contact, whatever the demo seeds.
    taken = set(NotificationContact.objects.active().filter(tenant=contoso).values_list("directory_user_id", flat=True))
    people = iter(DirectoryUser.objects.filter(tenant=contoso).exclude(pk__in=taken).order_by("pk"))
    wanted = {NotificationType.INCIDENT: 2, NotificationType.SERVICE_REVIEW: 1}
    phones = iter(["+44 20 7946 0958", "+1 425 555 0100"])
    for kind, count in wanted.items():
        have = NotificationContact.objects.active().filter(tenant=contoso, notification_type=kind).count()
        for _ in range(max(0, count - have)):
            contact_add(
                tenant=contoso,
                acting_user=admin,
                notification_type=kind,
                directory_user_id=next(people).pk,
                phone=next(phones) if kind == NotificationType.INCIDENT else "",
            )
    readiness_state_for(tenant=contoso)
    readiness_sweep()
    Tenant.objects.filter(pk=contoso.pk).update(service_phase=ServicePhase.PREPARING)
    return contoso


def _sign_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/sign-in/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(settings.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    complete_mfa(page, User.objects.get(email=email), settings.DEMO_TOTP_SECRET)


def _shape(path: str) -> str:
    return re.sub(r"/\d+/", "/N/", path)


def _crawl(page: Any, base: str, start: str, prefixes: tuple[str, ...]) -> list[str]:
    """Same-site pages reachable from ``start`` under ``prefixes``: one per URL shape, query strings dropped."""
    queue, shapes, pages = [start], set(), []
    while queue and len(pages) < MAX_PAGES:
        path = queue.pop(0)
        if _shape(path) in shapes:
            continue
        shapes.add(_shape(path))
        response = page.goto(base + path)
        if response is None or response.status != 200 or "text/html" not in response.headers.get("content-type", ""):
            continue
        pages.append(path)
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            url = urlparse(href)
            if url.netloc != urlparse(base).netloc or SKIP.search(url.path):
                continue
            if url.path.startswith(prefixes) and _shape(url.path) not in shapes:
                queue.append(url.path)
    return pages


def _name(path: str) -> str:
    return path.strip("/").replace("/", "_") or "home"


def _check_pages(context: Any, base: str, pages: list[str], shots: str, who: str) -> Iterator[str]:
    """Yield a line per problem found."""
    axe = Axe()
    page = context.new_page()
    for theme in ("light", "dark", "high-contrast"):
        context.add_cookies([{"name": THEME_COOKIE, "value": theme, "url": base}])
        for path in pages:
            for width in WIDTHS if theme == "light" else SHOT_WIDTHS:
                page.set_viewport_size({"width": width, "height": 800})
                # "load", not "networkidle": Service status polls while an assessment is running.
                page.goto(base + path, wait_until="load")
                page.wait_for_timeout(150)
                scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                if scroll > inner:
                    yield f"{path} scrolls sideways at {width} px ({theme}): {scroll} > {inner}"
                if theme != "high-contrast" and width in SHOT_WIDTHS:
                    page.screenshot(path=f"{shots}/look-{who}-{_name(path)}-{theme}-{width}.png", full_page=True)
                if width == 1280 or (width == 390 and theme == "light"):
                    results = axe.run(page)
                    if results.violations_count:
                        yield f"{path} at {width} px ({theme}): {results.generate_report()}"
    page.close()


def test_every_tenant_page_fits_every_width_and_passes_axe_in_every_theme(
    live_server: Any, context: Any, demo: Tenant, screenshot_dir: str
) -> None:
    page = context.new_page()
    _sign_in(page, live_server.url, "admin@contoso.example")
    pages = _crawl(page, live_server.url, "/settings/defender-experts/", ("/settings/", "/environment/"))
    page.close()
    # The pages every admin meets are among them (the crawl found its way).
    for expected in [
        "/settings/defender-experts/",
        "/settings/defender-experts/permissions/",
        "/settings/defender-experts/notification-contacts/",
        "/settings/defender-experts/service-status/",
        "/settings/defender-experts/audit-log/",
        "/environment/",
    ]:
        assert expected in pages, pages
    assert any(p.startswith("/settings/defender-experts/get-started/") for p in pages), pages
    problems = list(_check_pages(context, live_server.url, pages, screenshot_dir, "tenant"))
    assert not problems, "\n".join(problems)


def test_every_provider_page_fits_every_width_and_passes_axe_in_every_theme(
    live_server: Any, context: Any, demo: Tenant, screenshot_dir: str
) -> None:
    page = context.new_page()
    _sign_in(page, live_server.url, "sdm@experts.example")
    pages = _crawl(page, live_server.url, "/provider/onboarding/", ("/provider/",))
    page.close()
    assert "/provider/outbox/" in pages, pages
    assert any(p.startswith("/provider/readiness/tenants/") for p in pages), pages
    problems = list(_check_pages(context, live_server.url, pages, screenshot_dir, "provider"))
    assert not problems, "\n".join(problems)


def test_sign_in_page_fits_and_passes_axe(live_server: Any, context: Any, screenshot_dir: str) -> None:
    problems = list(_check_pages(context, live_server.url, ["/sign-in/"], screenshot_dir, "anonymous"))
    assert not problems, "\n".join(problems)


def test_windows_forced_colours_keep_the_key_pages_accessible(
    live_server: Any, browser: Any, demo: Tenant, screenshot_dir: str
) -> None:
    context = browser.new_context(forced_colors="active", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    _sign_in(page, live_server.url, "admin@contoso.example")
    axe = Axe()
    problems = []
    for path in [
        "/settings/defender-experts/",
        "/settings/defender-experts/permissions/",
        "/settings/defender-experts/notification-contacts/",
        "/settings/defender-experts/service-status/",
    ]:
        page.goto(live_server.url + path, wait_until="load")
        results = axe.run(page)
        if results.violations_count:
            problems.append(f"{path}: {results.generate_report()}")
        page.screenshot(path=f"{screenshot_dir}/look-forced-colours-{_name(path)}.png")
    context.close()
    assert not problems, "\n".join(problems)
