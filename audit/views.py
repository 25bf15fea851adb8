"""Settings > Defender Experts > Audit log: the tenant's full trail, filterable, exportable as CSV.

The page is read-only for every member; nothing here (nor the Django admin)
can edit or delete an event.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC
from typing import Any
from urllib.parse import urlencode

from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseBase, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit.forms import AuditFilterForm
from audit.presentation import action_label, field_changes
from audit.selectors import VIEWS, audit_events, audit_filter_choices, audit_page
from core.pages import render_page
from tenancy.access import TenantRequest, tenant_page

PAGE_SIZE = 50
CSV_COLUMNS = [
    "time_utc", "actor", "action", "summary", "target_type", "target_id", "before", "after", "ip_address", "user_agent",
]  # fmt: skip


@tenant_page
@require_GET
def audit_log(request: TenantRequest) -> HttpResponse:
    tenant = request.tenant
    form = AuditFilterForm(request.GET if request.GET else None)
    filters = form.filters()
    # A bounded count plus one keyset page: two queries, the same time on any page of any log.
    page = audit_page(
        tenant=tenant,
        filters=filters,
        per_page=PAGE_SIZE,
        after=request.GET.get("after"),
        before=request.GET.get("before"),
        number=request.GET.get("page"),
    )
    query = urlencode(filters.as_query())
    rows = [(e, action_label(e.action), field_changes(e.before, e.after)) for e in page]
    choices = audit_filter_choices(tenant=tenant)
    ctx: dict[str, Any] = {
        "rows": rows,
        "nav": "audit",
        "form": form,
        "filters": filters,
        "page": page,
        "query": query,
        "previous_query": urlencode({**filters.as_query(), **page.previous_query}) if page.has_previous else "",
        "next_query": urlencode({**filters.as_query(), **page.next_query}) if page.has_next else "",
        "choices": choices,
        "action_choices": sorted(((a, action_label(a)) for a in choices["actions"]), key=lambda c: c[1]),
        "views": VIEWS,
    }
    return render_page(request, "audit/log.html", ctx, partial="results")


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> str:
    """Neutralise spreadsheet formulas (CSV injection): a leading =, +, -, @ is prefixed with a quote."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def _rows(events: Any) -> Iterator[list[str]]:
    yield CSV_COLUMNS
    for e in events:
        yield [
            _cell(e.created_at.astimezone(UTC).isoformat()),
            _cell(e.actor_label),
            _cell(e.action),
            _cell(e.summary),
            _cell(e.target_type),
            _cell(e.target_id),
            _cell(_json(e.before)),
            _cell(_json(e.after)),
            _cell(e.ip_address or ""),
            _cell(e.user_agent),
        ]


@tenant_page
@require_GET
def audit_export(request: TenantRequest) -> HttpResponseBase:
    """The filtered trail as CSV, streamed in chunks so a long history never sits in memory."""
    tenant = request.tenant
    form = AuditFilterForm(request.GET if request.GET else None)
    if form.is_bound and not form.is_valid():
        # An export must hold exactly what was asked for, so a bad filter exports nothing.
        errors = " ".join(str(e) for field_errors in form.errors.values() for e in field_errors)
        return HttpResponseBadRequest(errors, content_type="text/plain; charset=utf-8")
    events = (
        audit_events(tenant=tenant, filters=form.filters())
        .only(
            "created_at",
            "actor_label",
            "action",
            "summary",
            "target_type",
            "target_id",
            "before",
            "after",
            "ip_address",
            "user_agent",
        )
        .iterator(chunk_size=2000)
    )
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in _rows(events)), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-log-{tenant.primary_domain}-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response
