"""Shared fixtures: a fixed cast of users, in the healthchecks style.

* ``contoso`` with ``admin`` (Global Administrator), ``secadmin`` (Security
  Administrator), ``operator`` (Security Operator) and ``reader`` (Security Reader);
* ``fabrikam`` with ``outsider`` (its Global Administrator);
* ``sdm``, a service delivery manager of the provider.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tenancy.models import Tenant, TenantRole, User
from tests import factories

# Hypothesis: small for CI ("ci", loaded by default); `pytest --hypothesis-profile=long` runs many more
# generated cases (for example before a release, or after changing a rule the property tests check).
hypothesis_settings.register_profile(
    "ci", max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
hypothesis_settings.register_profile(
    "long", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
hypothesis_settings.load_profile("ci")

# Playwright's sync API runs an event loop in this thread; Django's ORM would
# otherwise refuse to run in the browser tests' test bodies.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def contoso(db: Any) -> Tenant:
    return factories.tenant("Contoso", "contoso.example")


@pytest.fixture
def fabrikam(db: Any) -> Tenant:
    return factories.tenant("Fabrikam", "fabrikam.example")


@pytest.fixture
def admin(contoso: Tenant) -> User:
    return factories.member(contoso, TenantRole.GLOBAL_ADMINISTRATOR, "admin@contoso.example")


@pytest.fixture
def secadmin(contoso: Tenant) -> User:
    return factories.member(contoso, TenantRole.SECURITY_ADMINISTRATOR, "secadmin@contoso.example")


@pytest.fixture
def operator(contoso: Tenant) -> User:
    return factories.member(contoso, TenantRole.SECURITY_OPERATOR, "operator@contoso.example")


@pytest.fixture
def reader(contoso: Tenant) -> User:
    return factories.member(contoso, TenantRole.SECURITY_READER, "reader@contoso.example")


@pytest.fixture
def outsider(fabrikam: Tenant) -> User:
    return factories.member(fabrikam, TenantRole.GLOBAL_ADMINISTRATOR, "admin@fabrikam.example")


@pytest.fixture
def sdm(db: Any) -> User:
    return factories.staff(email="sdm@experts.example")


@pytest.fixture
def admin_user(db: Any) -> User:
    """pytest-django's operator (``admin_client``), enrolled in multi-factor sign-in as operators must be."""
    user = User.objects.create_superuser(
        email="operator@portal.example", password=factories.PASSWORD, display_name="Operator"
    )
    return factories.enrol_totp(user)


@pytest.fixture
def login(client: Client) -> Callable[[User], Client]:
    """``login(user)`` signs the test client in as ``user`` and returns it."""

    def _login(user: User) -> Client:
        client.force_login(user)
        return client

    return _login


# --- Browser tests --------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    # Debian's Chromium: `playwright install` cannot download a browser here.
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def browser_login(live_server: Any, context: Any) -> Callable[[User], None]:
    """Sign a Playwright browser context in as ``user`` through the real form."""

    def _login(user: User, password: str = factories.PASSWORD, secret: str = factories.TOTP_SECRET) -> None:
        page = context.new_page()
        page.goto(f"{live_server.url}/sign-in/")
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        complete_mfa(page, user, secret)
        page.close()

    return _login


_used_codes: set[tuple[int, str]] = set()


def fresh_totp_code(user: User, secret: str = factories.TOTP_SECRET) -> str:
    """A code the authenticator app would show that this user hasn't used yet
    (a code works once; the portal accepts one 30-second step either side)."""
    for step in (0, 1, -1):
        code = factories.totp_code(secret, step=step)
        if (user.pk, code) not in _used_codes:
            _used_codes.add((user.pk, code))
            return code
    raise AssertionError("all three TOTP codes of this minute are used; sign in less often in one test")


def complete_mfa(page: Any, user: User, secret: str = factories.TOTP_SECRET, *, keyboard: bool = False) -> None:
    """If sign-in asks for the second factor, type the authenticator app's code, generated here."""
    # Wait for the password step's answer (a keyboard Enter returns before it navigates).
    page.wait_for_url(lambda url: "/sign-in/" not in url, timeout=15_000)
    page.wait_for_load_state()
    if "/account/two-factor/authenticate/" not in page.url:
        return
    if keyboard:
        page.keyboard.type(fresh_totp_code(user, secret))  # the code field has focus on load
        page.keyboard.press("Enter")
    else:
        page.get_by_label("Code").fill(fresh_totp_code(user, secret))
        page.get_by_role("button", name="Verify").click()
    page.wait_for_load_state()


@pytest.fixture
def axe_check() -> Callable[[Any], None]:
    """``axe_check(page)`` fails the test with axe-core's report if it finds violations."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()

    def _check(page: Any) -> None:
        results = axe.run(page)
        assert results.violations_count == 0, results.generate_report()

    return _check


@pytest.fixture
def screenshot_dir() -> Iterator[str]:
    path = os.environ.get("SCREENSHOT_DIR", "test-artifacts/screenshots")
    os.makedirs(path, exist_ok=True)
    yield path


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Pages cache fragments under keys made of tenant ids and snapshot generations, which repeat
    from one test (and one test database) to the next: every test starts with an empty cache."""
    from django.core.cache import cache

    cache.clear()
