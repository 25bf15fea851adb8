"""Reads for the Service status page, the provider pages and other apps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from environment.models import (
    DEVICE_GAPS,
    IDENTITY,
    IDENTITY_GAPS,
    PROTECTED_DEVICE,
    PROTECTED_IDENTITY,
    Device,
    DeviceTally,
    DirectoryUser,
    DomainController,
    Licence,
    SecuritySetting,
)
from environment.selectors import DevicePage, keyset_page
from permissions.selectors import provider_access_of
from readiness.catalogue import ENTRIES, Entry
from readiness.models import ActionState, ActionStatus, ReadinessState, RefreshRun, Regression, Snapshot
from tenancy.models import Tenant

# --- The cross-app contract ----------------------------------------------------------


@dataclass(frozen=True)
class ReadinessSummary:
    is_ready: bool
    label: str
    completed: int
    total: int
    last_refreshed_at: datetime | None
    devices_protected: int = 0
    devices_target: int = 0
    identities_protected: int = 0
    identities_target: int = 0


NOT_ASSESSED = "Not assessed yet"


def readiness_summaries(*, tenant_ids: Any) -> dict[int, ReadinessSummary]:
    """Readiness per tenant for the provider console: one query for any number of tenants.

    Every requested tenant gets a summary; a tenant never refreshed is "Not assessed yet".
    """
    ids = [int(t) for t in tenant_ids]
    rows = ReadinessState.objects.filter(tenant_id__in=ids).values(
        "tenant_id",
        "is_ready",
        "actions_completed",
        "actions_total",
        "last_refreshed_at",
        "devices_protected",
        "devices_target",
        "identities_protected",
        "identities_target",
    )
    summaries: dict[int, ReadinessSummary] = {}
    for row in rows:
        if row["last_refreshed_at"] is None:
            continue
        label = (
            "Ready"
            if row["is_ready"]
            else f"Not ready · {row['actions_completed']} of {row['actions_total']} actions completed"
        )
        summaries[row["tenant_id"]] = ReadinessSummary(
            is_ready=row["is_ready"],
            label=label,
            completed=row["actions_completed"],
            total=row["actions_total"],
            last_refreshed_at=row["last_refreshed_at"],
            devices_protected=row["devices_protected"],
            devices_target=row["devices_target"],
            identities_protected=row["identities_protected"],
            identities_target=row["identities_target"],
        )
    for tenant_id in ids:
        summaries.setdefault(
            tenant_id,
            ReadinessSummary(
                is_ready=False, label=NOT_ASSESSED, completed=0, total=len(ENTRIES), last_refreshed_at=None
            ),
        )
    return summaries


# --- The Service status page -------------------------------------------------------------


def readiness_state(*, tenant: Tenant) -> ReadinessState:
    """The tenant's readiness state, for pages (one query, never a write).

    The sweep creates every tenant's row (``readiness_create_missing_states``); until it has, the
    page shows an unsaved state with the defaults a new row gets: not assessed yet, the first
    assessment due now.
    """
    state = ReadinessState.objects.filter(tenant=tenant).first()
    if state is None:
        state = ReadinessState(tenant=tenant, next_refresh_at=timezone.now())
    return state


STATUS_ORDER: dict[str, int] = {
    ActionState.NOT_STARTED: 0,
    ActionState.IN_PROGRESS: 1,
    ActionState.COMPLETED: 2,
}
SORT_KEYS = ("status", "title", "product", "priority", "changed")
PENDING_LABEL = "In progress, waiting for the next refresh"


@dataclass
class ActionRow:
    entry: Entry
    status: str | None  # None until the first refresh
    last_status_change: datetime | None
    last_checked_at: datetime | None
    done: int | None
    total: int | None
    detail: str
    pending_change: bool = False
    # When the environment this action reads last changed, if after its last check.
    changed_at: datetime | None = None
    # How the page shows it (presenters): where to fix it and the status badge's colour.
    fix_url: str | None = None
    badge: str = ""

    @property
    def key(self) -> str:
        return self.entry.key

    @property
    def shown_status(self) -> str | None:
        """A change seen (in the environment or in Permissions) but not yet confirmed by a refresh shows as
        In progress, whatever the last refresh found: its verdict is no longer current, even Completed."""
        if self.pending_change:
            return ActionState.IN_PROGRESS
        return self.status

    @property
    def status_label(self) -> str:
        if self.pending_change:
            return PENDING_LABEL
        s = self.shown_status
        return ActionState(s).label if s else "Not checked yet"

    @property
    def anchor(self) -> str:
        return "action-" + self.entry.key.replace(".", "-")

    @property
    def priority(self) -> str:
        return self.entry.priority

    @property
    def needs_completing_now(self) -> bool:
        """A required action not yet completed: "Prioritize the actions that have the Complete now status"."""
        return self.entry.required and self.shown_status is not None and self.shown_status != ActionState.COMPLETED


def action_rows(*, tenant: Tenant, state: ReadinessState) -> list[ActionRow]:
    """Every catalogue action with its stored status, plus pending-change detection (3 queries)."""
    stored = {a.key: a for a in ActionStatus.objects.filter(tenant=tenant)}
    changed = _changes_since(tenant=tenant) if state.last_refreshed_at else {}
    rows = []
    for entry in ENTRIES:
        a = stored.get(entry.key)
        row = ActionRow(
            entry=entry,
            status=a.status if a else None,
            last_status_change=a.last_status_change if a else None,
            last_checked_at=a.last_checked_at if a else None,
            done=a.done if a else None,
            total=a.total if a else None,
            detail=a.detail if a else "",
        )
        if a is not None:
            seen = [changed[source] for source in _sources_of(entry) if source in changed]
            newer = [when for when in seen if when > a.last_checked_at]
            row.pending_change = bool(newer)
            row.changed_at = max(newer) if newer else None
        rows.append(row)
    return rows


def _sources_of(entry: Entry) -> tuple[str, ...]:
    """The parts of the environment an entry's rule reads (for "changed since the last check")."""
    rule = entry.rule
    if rule.type == "setting_in":
        return ("setting:" + rule.params["key"],)
    return {
        "device_ratio": ("devices",),
        "dc_sensor_coverage": ("domain_controllers",),
        # Enabled users against seats: enabling a user and changing the seats both count.
        "licence_covers_enabled_users": ("users", "licences"),
        # Granted or removed in Permissions: not an environment change, but the admin expects to see it.
        "provider_access_granted": ("provider_access",),
    }.get(rule.type, ())


def _changes_since(*, tenant: Tenant) -> dict[str, datetime]:
    """When each source of the environment last changed (2 queries, index-backed max()).

    Used only to say "a change was seen and will be confirmed by the next
    refresh"; the figures themselves stay those of the last refresh.
    """
    sources: dict[str, datetime] = {}
    latest: Any = (
        Tenant.objects.filter(pk=tenant.pk)
        .annotate(
            latest_device=Subquery(
                Device.objects.filter(tenant=OuterRef("pk")).order_by("-updated_at").values("updated_at")[:1]
            ),
            latest_dc=Subquery(
                DomainController.objects.filter(tenant=OuterRef("pk")).order_by("-updated_at").values("updated_at")[:1]
            ),
            latest_user=Subquery(
                DirectoryUser.objects.filter(tenant=OuterRef("pk")).order_by("-updated_at").values("updated_at")[:1]
            ),
            latest_licence=Subquery(
                Licence.objects.filter(tenant=OuterRef("pk")).order_by("-updated_at").values("updated_at")[:1]
            ),
            latest_access=Subquery(provider_access_of(OuterRef("pk")).values("updated_at")[:1]),
        )
        .values("latest_device", "latest_dc", "latest_user", "latest_licence", "latest_access")
        .first()
    ) or {}
    names = {
        "latest_device": "devices",
        "latest_dc": "domain_controllers",
        "latest_user": "users",
        "latest_licence": "licences",
        "latest_access": "provider_access",
    }
    for name, value in latest.items():
        if value is not None:
            sources[names[name]] = value
    for key, updated in SecuritySetting.objects.filter(tenant=tenant).values_list("key", "updated_at"):
        sources["setting:" + key] = updated
    return sources


def filter_and_sort(
    rows: list[ActionRow],
    *,
    status: str = "",
    priority: str = "",
    product: str = "",
    sort: str = "status",
    direction: str = "asc",
) -> list[ActionRow]:
    """Filter and sort the catalogue-sized list (17 rows) in Python.

    By default the required actions not yet completed come first (the ones to prioritize), then by status.
    """
    if status:
        rows = [r for r in rows if r.shown_status == status]
    if priority:
        rows = [r for r in rows if r.priority == priority]
    if product:
        rows = [r for r in rows if r.entry.product_slug == product]
    far = timezone.now().replace(year=1970)

    def key(r: ActionRow) -> Any:
        status_rank = STATUS_ORDER.get(r.shown_status, 4) if r.shown_status else 4
        if sort == "title":
            return (r.entry.title.lower(),)
        if sort == "product":
            return (r.entry.product, status_rank, r.entry.title.lower())
        if sort == "priority":
            return (0 if r.entry.required else 1, status_rank, r.entry.title.lower())
        if sort == "changed":
            return (r.last_status_change or far, r.entry.title.lower())
        return (0 if r.needs_completing_now else 1, status_rank, 0 if r.entry.required else 1, r.entry.title.lower())

    return sorted(rows, key=key, reverse=direction == "desc")


def history(*, tenant: Tenant, limit: int = 60) -> list[Snapshot]:
    """The last ``limit`` refreshes, oldest first (one query)."""
    points = list(Snapshot.objects.filter(tenant=tenant).order_by("-taken_at", "-id")[:limit])
    points.reverse()
    return points


def open_regressions(*, tenant: Tenant) -> list[Regression]:
    return list(Regression.objects.filter(tenant=tenant, resolved_at__isnull=True).order_by("-detected_at"))


# --- The device, domain controller and identity lists behind each number -----------------

# Every list is the environment's own definition (environment/models.py), so each one's length is
# the figure it stands behind.
DEVICE_STATES: dict[str, tuple[str, Q]] = {
    "protected": ("Protected devices", PROTECTED_DEVICE),
    "unprotected": ("Devices not protected", ~PROTECTED_DEVICE),
    "not_onboarded": ("Devices not onboarded", DEVICE_GAPS["not_onboarded"][1]),
    "passive": ("Onboarded devices with antivirus in passive mode", DEVICE_GAPS["passive"][1]),
    "disabled": ("Onboarded devices with antivirus disabled", DEVICE_GAPS["disabled"][1]),
    "not_active": (
        "Onboarded devices with antivirus not in active mode",
        DEVICE_GAPS["passive"][1] | DEVICE_GAPS["disabled"][1],
    ),
}

# Which ReadinessState figure each list stands behind, to compare with the live count.
DEVICE_STATE_FIGURE = {
    "protected": "devices_protected",
    "unprotected": "devices_unprotected",
    "not_onboarded": "devices_not_onboarded",
    "passive": "devices_passive",
    "disabled": "devices_disabled",
}

# The matching filter in Environment > Devices, where the admin can fix them.
DEVICE_STATE_ENV_QUERY = {
    "protected": "onboarding=onboarded&av=active",
    "not_onboarded": "onboarding=not_onboarded",
    "passive": "onboarding=onboarded&av=passive",
    "disabled": "onboarding=onboarded&av=disabled",
    "not_active": "onboarding=onboarded&av=passive",
    "unprotected": "onboarding=not_onboarded",
}

PAGE_SIZE = 25
# Inside an action's row the list is shorter.
EMBEDDED_PAGE_SIZE = 10


def device_page(
    *, tenant: Tenant, state: str, page: Any, per_page: int = PAGE_SIZE, after: str = "", before: str = ""
) -> tuple[str, DevicePage]:
    """One page of the devices behind a number: counted from the device tally with the same condition,
    then read by name from where the previous page ended (keyset), so neither grows with the devices."""
    title, condition = DEVICE_STATES[state]
    count = DeviceTally.objects.filter(tenant=tenant).filter(condition).aggregate(n=Sum("devices"))["n"] or 0
    qs: QuerySet[Device] = (
        Device.objects.filter(tenant=tenant)
        .filter(condition)
        # Whether a fix is offered at all: a protected device has nothing to fix.
        .with_protection()
        .select_related("device_group")
        .only("id", "name", "os_platform", "onboarding_state", "av_mode", "last_seen", "device_group__name")
    )
    return title, keyset_page(qs, matching=count, per_page=per_page, after=after, before=before, number=page)


def domain_controller_page(
    *, tenant: Tenant, state: str, page: Any, per_page: int = PAGE_SIZE
) -> tuple[str, Page[Any]]:
    qs = DomainController.objects.filter(tenant=tenant).order_by("name", "id")
    if state == "without_sensor":
        qs = qs.filter(sensor_installed=False)
        title = "Domain controllers without a Defender for Identity sensor"
    else:
        qs = qs.filter(sensor_installed=True)
        title = "Domain controllers with a Defender for Identity sensor"
    return title, Paginator(qs, per_page).get_page(page)


IDENTITY_STATES: dict[str, tuple[str, Q]] = {
    "protected": ("Protected identities", PROTECTED_IDENTITY),
    "unprotected": ("Identities not protected", IDENTITY & ~PROTECTED_IDENTITY),
    "no_sensor": ("Identities on a domain controller without a sensor", IDENTITY_GAPS["no_sensor"][1]),
}

# Which ReadinessState figure each identity list stands behind.
IDENTITY_STATE_FIGURE = {
    "protected": "identities_protected",
    "unprotected": "identities_unprotected",
    "no_sensor": "identities_unprotected",
}


def identity_page(*, tenant: Tenant, state: str, page: Any, per_page: int = PAGE_SIZE) -> tuple[str, Page[Any]]:
    title, condition = IDENTITY_STATES[state]
    qs = (
        DirectoryUser.objects.filter(tenant=tenant)
        .filter(condition)
        .select_related("domain_controller")
        .only("id", "display_name", "user_principal_name", "domain_controller__name")
        .order_by("display_name", "id")
    )
    return title, Paginator(qs, per_page).get_page(page)


# --- Provider pages -----------------------------------------------------------------------


def runs_for_provider(*, organization_id: int, tenant_id: int | None = None, outcome: str = "") -> QuerySet[RefreshRun]:
    qs = RefreshRun.objects.filter(tenant__provider_id=organization_id).select_related("tenant")
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    if outcome:
        qs = qs.filter(outcome=outcome)
    return qs.order_by("-started_at", "-id")


@dataclass
class ChartPoint:
    x: float
    y: float
    label: str


@dataclass
class HistoryChart:
    """A server-side SVG line chart: actions completed % and protected coverage % over refreshes."""

    width: int = 640
    height: int = 220
    pad_left: int = 44
    pad_right: int = 16
    pad_top: int = 16
    pad_bottom: int = 36
    series: list[dict[str, Any]] = field(default_factory=list)
    gridlines: list[dict[str, Any]] = field(default_factory=list)
    xlabels: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


def _pct(part: int, whole: int) -> float:
    return 100.0 * min(part, whole) / whole if whole else 0.0


def history_chart(points: list[Snapshot]) -> HistoryChart:
    chart = HistoryChart()
    plot_w = chart.width - chart.pad_left - chart.pad_right
    plot_h = chart.height - chart.pad_top - chart.pad_bottom
    n = len(points)

    def x_of(i: int) -> float:
        return chart.pad_left + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y_of(pct: float) -> float:
        return chart.pad_top + plot_h * (1 - pct / 100)

    for pct in (0, 25, 50, 75, 100):
        chart.gridlines.append(
            {"y": round(y_of(pct), 1), "label": f"{pct}%", "x1": chart.pad_left, "x2": chart.width - chart.pad_right}
        )
    specs: list[tuple[str, str, Callable[[Snapshot], float]]] = [
        ("actions", "Actions completed", lambda s: _pct(s.actions_completed, s.actions_total)),
        ("devices", "Protected devices", lambda s: _pct(s.devices_protected, s.devices_target)),
        ("identities", "Protected identities", lambda s: _pct(s.identities_protected, s.identities_target)),
    ]
    for slug, label, fn in specs:
        pts = [ChartPoint(round(x_of(i), 1), round(y_of(fn(s)), 1), f"{fn(s):.0f}%") for i, s in enumerate(points)]
        chart.series.append(
            {"slug": slug, "label": label, "points": pts, "polyline": " ".join(f"{p.x},{p.y}" for p in pts)}
        )
    if n:
        step = max(1, -(-n // 5))  # at most about 5 labels, first and last always
        indexes = sorted({*range(0, n, step), n - 1})
        if len(indexes) > 1 and indexes[-1] - indexes[-2] < step / 2:
            indexes.pop(-2)  # keep the last label from overlapping its neighbour
        for i in indexes:
            # The first and last labels hang inward so they are never clipped.
            anchor = "middle" if n == 1 else ("start" if i == 0 else "end" if i == n - 1 else "middle")
            chart.xlabels.append(
                {
                    "x": round(x_of(i), 1),
                    "anchor": anchor,
                    "text": timezone.localtime(points[i].taken_at).strftime("%d %b %H:%M"),
                }
            )
    for s in points:
        chart.rows.append(
            {
                "taken_at": s.taken_at,
                "actions": f"{s.actions_completed} of {s.actions_total}",
                "devices": f"{s.devices_protected:,} of {s.devices_target:,}",
                "identities": f"{s.identities_protected:,} of {s.identities_target:,}",
                "ready": s.is_ready,
            }
        )
    return chart
