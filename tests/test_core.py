"""The web core: each ApplicationError -> its response (in one place), render_page's
full page / htmx partial and Vary, the request context in audit rows, and the
tenant_page / provider_page rules for the fixed cast."""

from __future__ import annotations

import pytest
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, reverse
from django.views.decorators.http import require_POST

from audit.models import AuditEvent
from audit.services import audit_record
from core.context import current_request_context, request_context
from core.errors import ApplicationError, Conflict, Invalid, NeedsConfirmation, NeedsReauth, NotAllowed
from core.pages import on_error, render_page
from environment.models import Device
from tenancy.access import ProviderRequest, TenantRequest, get_tenant_object_or_404, provider_page, tenant_page
from tenancy.models import ProviderRole
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

PAGE = "core_test/page.html"
KINDS: dict[str, type[ApplicationError]] = {
    "invalid": Invalid,
    "conflict": Conflict,
    "confirm": NeedsConfirmation,
    "reauth": NeedsReauth,
    "denied": NotAllowed,
}


@tenant_page
def page(request: TenantRequest) -> HttpResponse:
    return render_page(request, PAGE, {"value": request.tenant.name}, partial="panel")


@tenant_page(manage=True)
@require_POST
def submit(request: TenantRequest) -> HttpResponse:
    value = request.POST.get("value", "")
    if request.POST.get("page") != "none":
        on_error(
            request,
            lambda error: render_page(request, PAGE, {"value": value, "error": error}, partial="panel"),
            reauth_next="/core/page/?value=" + value,
        )
    raise KINDS[request.POST["kind"]](f"Refused: {request.POST['kind']}.")


@tenant_page(manage=True)
@require_POST
def audited(request: TenantRequest) -> HttpResponse:
    event = audit_record(tenant=request.tenant, acting_user=request.user, action="core.test", summary="A change")
    return HttpResponse(str(event.pk))


@tenant_page(manage="writes")
def writes(request: TenantRequest) -> HttpResponse:
    return HttpResponse(request.method)


@tenant_page
def device(request: TenantRequest, pk: str) -> HttpResponse:
    return HttpResponse(get_tenant_object_or_404(request, Device, pk=pk).name)


@provider_page
def staff_page(request: ProviderRequest) -> HttpResponse:
    return HttpResponse(request.provider_staff.organization.name)


@provider_page(sdm=True)
def sdm_page(request: ProviderRequest) -> HttpResponse:
    return HttpResponse("sdm")


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("plain")


urlpatterns = [
    path("core/page/", page),
    path("core/submit/", submit),
    path("core/audited/", audited),
    path("core/writes/", writes),
    path("core/device/<str:pk>/", device),
    path("core/staff/", staff_page),
    path("core/sdm/", sdm_page),
    path("core/plain/", plain),
    path("", include("defender_portal.urls")),
]

HTMX = {"HX-Request": "true"}


# --- One mapping from error to response ---------------------------------------------------


@pytest.mark.parametrize(("kind", "status"), [("invalid", 400), ("conflict", 409), ("confirm", 200)])
def test_a_refusal_re_renders_the_page_with_the_users_values(login, admin, kind, status):
    client = login(admin)
    response = client.post("/core/submit/", {"kind": kind, "value": "typed by me"})
    assert response.status_code == status
    body = response.content.decode()
    assert 'data-testid="full"' in body, "a plain form post gets the whole page"
    assert f"Refused: {kind}." in body and 'value="typed by me"' in body


@pytest.mark.parametrize(("kind", "status"), [("invalid", 400), ("conflict", 409), ("confirm", 200)])
def test_htmx_gets_the_partial_with_the_same_status(login, admin, kind, status):
    response = login(admin).post("/core/submit/", {"kind": kind, "value": "mine"}, headers=HTMX)
    assert response.status_code == status
    body = response.content.decode()
    assert 'data-testid="full"' not in body and 'data-testid="panel"' in body and 'value="mine"' in body
    assert "HX-Request" in response["Vary"]


def test_a_stale_edit_without_a_page_still_says_409(login, admin):
    response = login(admin).post("/core/submit/", {"kind": "conflict", "page": "none"})
    assert response.status_code == 409 and b"Refused: conflict." in response.content


def test_needs_reauth_sends_to_the_password_prompt_and_back(login, admin):
    client = login(admin)
    response = client.post("/core/submit/", {"kind": "reauth", "value": "x"})
    assert response.status_code == 302
    assert response["Location"] == reverse("confirm_password") + "?next=%2Fcore%2Fpage%2F%3Fvalue%3Dx"
    response = client.post("/core/submit/", {"kind": "reauth", "value": "x"}, headers=HTMX)
    assert response.status_code == 200 and response["HX-Redirect"].startswith(reverse("confirm_password"))


def test_not_allowed_is_the_403_page_with_its_message(login, admin):
    response = login(admin).post("/core/submit/", {"kind": "denied"})
    assert response.status_code == 403
    assert b"have access</h1>" in response.content and b"Refused: denied." in response.content


def test_not_allowed_is_a_permission_denied_too():
    from django.core.exceptions import PermissionDenied

    assert issubclass(NotAllowed, PermissionDenied)


# --- render_page ---------------------------------------------------------------------------


def test_render_page_serves_the_full_page_or_the_partial(login, admin):
    client = login(admin)
    full = client.get("/core/page/")
    assert b'data-testid="full"' in full.content and b'value="Contoso"' in full.content
    fragment = client.get("/core/page/", headers=HTMX)
    assert b'data-testid="full"' not in fragment.content and b'data-testid="panel"' in fragment.content
    # htmx restoring history it has no snapshot of needs the whole page.
    restore = client.get("/core/page/", headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert b'data-testid="full"' in restore.content
    for response in (full, fragment, restore):
        assert "HX-Request" in response["Vary"]


def test_every_response_varies_on_hx_request(client, admin):
    assert "HX-Request" in client.get("/core/plain/")["Vary"]
    assert "HX-Request" in client.get("/core/page/")["Vary"]  # a redirect to sign-in too


# --- The request context -------------------------------------------------------------------


def test_audit_rows_carry_the_requests_ip_and_id(client, admin):
    client.force_login(admin)
    response = client.post("/core/audited/", REMOTE_ADDR="198.51.100.7")
    event = AuditEvent.objects.get(pk=int(response.content))
    assert event.ip_address == "198.51.100.7"
    assert event.request_id == response["X-Request-ID"] and len(event.request_id) == 32
    second = client.post("/core/audited/", REMOTE_ADDR="198.51.100.7")
    assert AuditEvent.objects.get(pk=int(second.content)).request_id != event.request_id


def test_outside_a_request_audit_rows_have_no_ip(admin, contoso):
    assert current_request_context() is None
    event = audit_record(tenant=contoso, acting_user=None, action="core.test", summary="A sweep")
    assert event.ip_address is None and event.request_id == ""


def test_an_explicit_ip_wins_over_the_context(contoso):
    with request_context(ip_address="192.0.2.1", request_id="abc") as ctx:
        assert current_request_context() is ctx
        event = audit_record(tenant=contoso, acting_user=None, action="x", summary="y", ip_address="192.0.2.9")
    assert (event.ip_address, event.request_id) == ("192.0.2.9", "abc")
    assert current_request_context() is None


# --- tenant_page / provider_page for the fixed cast ----------------------------------------------


def test_tenant_page_rules(client, login, admin, secadmin, operator, reader, outsider, sdm):
    response = client.get("/core/page/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert login(sdm).get("/core/page/")["Location"] == reverse("onboarding_provider:console")
    assert login(factories.user()).get("/core/page/").status_code == 403
    for member in (admin, secadmin, operator, reader, outsider):
        assert login(member).get("/core/page/").status_code == 200


def test_manage_true_refuses_view_only_roles_every_method(login, admin, secadmin, operator, reader):
    for member in (operator, reader):
        response = login(member).post("/core/audited/")
        assert response.status_code == 403 and b"Only a Global Administrator" in response.content
    for member in (admin, secadmin):
        assert login(member).post("/core/audited/").status_code == 200


def test_manage_writes_lets_view_only_roles_read(login, reader, admin):
    client = login(reader)
    assert client.get("/core/writes/").content == b"GET"
    assert client.post("/core/writes/").status_code == 403
    assert login(admin).post("/core/writes/").content == b"POST"


def test_foreign_or_malformed_ids_are_404(login, admin, contoso, fabrikam):
    ours = factories.devices(contoso, 1)[0]
    theirs = factories.devices(fabrikam, 1)[0]
    client = login(admin)
    assert client.get(f"/core/device/{ours.pk}/").status_code == 200
    assert client.get(f"/core/device/{theirs.pk}/").status_code == 404
    assert client.get("/core/device/abc/").status_code == 404


def test_provider_page_rules(client, login, admin, sdm):
    assert client.get("/core/staff/")["Location"].startswith(reverse("login"))
    assert login(admin).get("/core/staff/").status_code == 403
    assert login(sdm).get("/core/staff/").status_code == 200
    assert login(sdm).get("/core/sdm/").content == b"sdm"
    analyst = factories.staff(role=ProviderRole.ANALYST, email="analyst@experts.example")
    response = login(analyst).get("/core/sdm/")
    assert response.status_code == 403 and b"Only a service delivery manager" in response.content
    assert login(analyst).get("/core/staff/").status_code == 200
