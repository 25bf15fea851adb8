"""Turning readiness data into what the pages show: banners, the donut chart, links.

No queries here: everything is computed from rows the selectors already read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from readiness.catalogue import Entry
from readiness.models import ActionState, AssetBreakdown, AssetReason, ReadinessState
from readiness.selectors import ActionRow
from readiness.services import monitoring_ends_at
from tenancy.models import ServicePhase, Tenant

NOTE_24H = "It can take up to 24 hours to get the latest status of your security settings"


def fix_url(entry: Entry) -> str | None:
    """Where the admin fixes an action, in the emulated environment or in Permissions."""
    try:
        base = reverse(entry.fix.url_name)
    except NoReverseMatch:
        return None
    return base + entry.fix.query


@dataclass(frozen=True)
class PhaseBanner:
    phase_label: str
    title: str
    body: str
    tone: str  # messagebar modifier


def phase_banner(tenant: Tenant, state: ReadinessState, *, now: datetime | None = None) -> PhaseBanner:
    phase = ServicePhase(tenant.service_phase)
    if phase == ServicePhase.MONITORING:
        ends = monitoring_ends_at(tenant)
        when = f"{timezone.localtime(ends):%d %B %Y}" if ends else "soon"
        return PhaseBanner(
            phase.label,
            "Monitoring phase",
            "Our experts are monitoring your environment closely to identify latent threats, sources of risk and "
            f"normal activity. The monitoring phase ends on {when}; your service delivery manager (SDM) then "
            "confirms the service as Active. Keep your readiness assessment up to date meanwhile.",
            "info",
        )
    if phase == ServicePhase.ACTIVE:
        return PhaseBanner(
            phase.label,
            "The Defender Experts service is active",
            "Defender Experts reviews your readiness assessment periodically, especially when your environment "
            "changes, such as the addition of new devices and identities. Changes that weaken your readiness are "
            "shown here and sent to your service review contacts.",
            "success",
        )
    if state.is_ready:
        return PhaseBanner(
            phase.label,
            "Readiness met",
            "You've completed all the required tasks and met the onboarding targets. Your service delivery manager "
            "(SDM) initiates the monitoring phase of the Defender Experts for XDR service next.",
            "success",
        )
    return PhaseBanner(
        phase.label,
        "Prepare your environment for the Defender Experts service",
        "Prioritize the actions that have the Complete now status and reach your protected asset targets to get the "
        "Defender Experts for XDR service started sooner. Once readiness is met, your service delivery manager (SDM) "
        "initiates the monitoring phase.",
        "info",
    )


@dataclass(frozen=True)
class DonutSegment:
    slug: str
    label: str
    count: int
    dasharray: str
    dashoffset: str


@dataclass(frozen=True)
class Donut:
    total: int
    to_complete: int
    in_progress: int
    completed: int
    segments: tuple[DonutSegment, ...]


def action_counts(rows: list[ActionRow]) -> dict[str, int]:
    counts = {s: 0 for s in ActionState.values}
    for row in rows:
        if row.shown_status:
            counts[row.shown_status] += 1
    return counts


def donut(rows: list[ActionRow]) -> Donut:
    """Segments for an SVG ring whose circumference is 100 (r = 15.9155), so dash lengths are percentages."""
    counts = action_counts(rows)
    to_complete = counts[ActionState.NOT_STARTED]
    parts = [
        ("to-complete", "Not started", to_complete),
        ("in-progress", "In progress", counts[ActionState.IN_PROGRESS]),
        ("completed", "Completed", counts[ActionState.COMPLETED]),
    ]
    total = sum(c for _, _, c in parts)
    segments = []
    offset = 25.0  # start at 12 o'clock
    for slug, label, count in parts:
        pct = 100.0 * count / total if total else 0.0
        segments.append(DonutSegment(slug, label, count, f"{pct:.3f} {100 - pct:.3f}", f"{offset:.3f}"))
        offset -= pct
    return Donut(total, to_complete, counts[ActionState.IN_PROGRESS], counts[ActionState.COMPLETED], tuple(segments))


def status_badge(status: str | None) -> str:
    badges: dict[str, str] = {
        ActionState.NOT_STARTED: "warning",
        ActionState.IN_PROGRESS: "info",
        ActionState.COMPLETED: "success",
    }
    return badges.get(status or "", "")


def percent(part: int, whole: int) -> int:
    return int(100 * min(part, whole) / whole) if whole else 0


@dataclass(frozen=True)
class AssetCard:
    """One "Protected assets" card: the breakdown and where its lists are."""

    breakdown: AssetBreakdown
    list_url: str  # the URL name of the drill-down lists, taking a reason's key

    @property
    def noun(self) -> str:
        return self.breakdown.noun

    @property
    def target(self) -> int:
        return self.breakdown.target

    @property
    def protected(self) -> int:
        return self.breakdown.protected

    @property
    def to_protect(self) -> int:
        return self.breakdown.to_protect

    @property
    def reasons(self) -> tuple[AssetReason, ...]:
        return self.breakdown.reasons

    @property
    def pct(self) -> int:
        return percent(self.breakdown.protected, self.breakdown.target)


def asset_cards(state: ReadinessState) -> list[AssetCard]:
    return [
        AssetCard(state.device_breakdown, "readiness:devices"),
        AssetCard(state.identity_breakdown, "readiness:identities"),
    ]
