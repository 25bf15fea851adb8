"""The readiness catalogue: versioned data, evaluated by the generic rules in ``rules.py``.

Adding an action is adding an entry here (and bumping ``CATALOGUE_VERSION``);
no code branches on a key. Setting keys come from
``environment.security_settings``; a test checks every key and value exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from readiness.models import Priority

CATALOGUE_VERSION = "2026.11.2"

MDE = "Microsoft Defender for Endpoint"
MDI = "Microsoft Defender for Identity"
ENTRA = "Microsoft Entra ID"
MDO = "Microsoft Defender for Office 365"
MDCA = "Microsoft Defender for Cloud Apps"
PURVIEW = "Microsoft Purview"

PRODUCTS: tuple[tuple[str, str], ...] = (
    ("mde", MDE),
    ("mdi", MDI),
    ("entra", ENTRA),
    ("mdo", MDO),
    ("mdca", MDCA),
    ("purview", PURVIEW),
)
PRODUCT_SLUGS: dict[str, str] = {label: slug for slug, label in PRODUCTS}


@dataclass(frozen=True)
class Rule:
    type: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fix:
    """Where the admin fixes this action: a URL name and its query string."""

    url_name: str
    query: str = ""
    label: str = "Fix it"


@dataclass(frozen=True)
class Entry:
    key: str
    product: str
    title: str
    description: str
    why_it_matters: str
    how_to_fix: str
    required: bool
    rule: Rule
    fix: Fix
    # What the rule measures, shown in the opened row when it can't list the affected items itself.
    measured: str = ""

    @property
    def product_slug(self) -> str:
        return PRODUCT_SLUGS[self.product]

    @property
    def priority(self) -> Priority:
        return Priority.COMPLETE_NOW if self.required else Priority.RECOMMENDED

    @property
    def priority_label(self) -> str:
        return self.priority.label


def _setting(
    key: str,
    product: str,
    title: str,
    *,
    values: list[str],
    partial: list[str] | None = None,
    required: bool,
    description: str,
    why: str,
    how: str,
) -> Entry:
    return Entry(
        key=key,
        product=product,
        title=title,
        description=description,
        why_it_matters=why,
        how_to_fix=how,
        required=required,
        rule=Rule("setting_in", {"key": key, "values": values, "partial_values": partial or []}),
        fix=Fix("environment:settings", f"#value-{key}", "Change this setting"),
    )


ENTRIES: tuple[Entry, ...] = (
    # --- Microsoft Defender for Endpoint -------------------------------------------
    Entry(
        key="mde.av_active",
        product=MDE,
        title="Turn on Microsoft Defender Antivirus in active mode on all onboarded devices",
        description="Every device onboarded to Defender for Endpoint runs Microsoft Defender Antivirus in active mode.",
        why_it_matters=(
            "In passive or disabled mode, Defender Antivirus doesn't block threats, so our experts can see an attack "
            "but the device doesn't stop it."
        ),
        how_to_fix=(
            "Remove or turn off any third-party antivirus and set Microsoft Defender Antivirus to active mode on the "
            "devices listed below."
        ),
        required=True,
        rule=Rule("device_ratio", {}),
        fix=Fix("environment:devices", "?onboarding=onboarded&av=passive", "Put these devices in active mode"),
    ),
    _setting(
        "mde.tamper_protection",
        MDE,
        "Turn on tamper protection",
        values=["on"],
        required=True,
        description="Tamper protection locks Microsoft Defender Antivirus security settings.",
        why="Attackers routinely try to turn off protection first; tamper protection stops them changing it.",
        how="In Settings > Endpoints > Advanced features, turn on Tamper protection.",
    ),
    _setting(
        "mde.cloud_protection",
        MDE,
        "Turn on cloud-delivered protection",
        values=["on"],
        required=True,
        description="Cloud-delivered protection gives Defender Antivirus near-instant detection of new threats.",
        why="New malware is identified in the cloud in seconds, long before signature updates reach devices.",
        how="Turn on cloud-delivered protection in your antivirus policy.",
    ),
    _setting(
        "mde.edr_block_mode",
        MDE,
        "Turn on EDR in block mode",
        values=["on"],
        required=False,
        description="EDR in block mode blocks malicious artifacts detected by endpoint detection and response.",
        why="It remediates threats post-breach even when another antivirus is the primary one.",
        how="In Settings > Endpoints > Advanced features, turn on Enable EDR in block mode.",
    ),
    _setting(
        "mde.network_protection",
        MDE,
        "Turn on network protection in block mode",
        values=["block"],
        partial=["audit"],
        required=False,
        description="Network protection stops devices connecting to dangerous domains and IP addresses.",
        why="It blocks phishing sites, command-and-control servers and exploit hosting before a connection is made.",
        how="Set network protection to Block in your attack surface reduction policy (Audit only records events).",
    ),
    _setting(
        "mde.air_level",
        MDE,
        "Set automated investigation and remediation to Full",
        values=["full"],
        partial=["semi"],
        required=True,
        description="Automated investigation and remediation (AIR) resolves alerts without waiting for approval.",
        why="With Full automation, threats are remediated in minutes, and our experts can focus on what needs people.",
        how=(
            "In Settings > Endpoints > Device groups, set the automation level to "
            "Full – remediate threats automatically."
        ),
    ),
    _setting(
        "mde.asr_rules",
        MDE,
        "Turn on the recommended attack surface reduction rules in block mode",
        values=["block"],
        partial=["audit"],
        required=False,
        description="The standard protection attack surface reduction rules block common attack techniques.",
        why="They stop Office macros, credential theft from LSASS and other behaviours malware relies on.",
        how="Move the recommended rules from Audit to Block after reviewing the audit events.",
    ),
    _setting(
        "mde.pua_protection",
        MDE,
        "Turn on potentially unwanted application (PUA) protection",
        values=["block"],
        partial=["audit"],
        required=False,
        description="PUA protection blocks adware, bundleware and other low-reputation applications.",
        why="Unwanted applications slow devices, show ads and are a common entry point for real malware.",
        how="Set PUA protection to Block in your antivirus policy.",
    ),
    # --- Microsoft Defender for Identity --------------------------------------------
    Entry(
        key="mdi.sensors",
        product=MDI,
        title="Install Defender for Identity sensors on all domain controllers",
        description="Every on-premises domain controller runs a Microsoft Defender for Identity sensor.",
        why_it_matters=(
            "Identities authenticated by a domain controller without a sensor are invisible to our experts: "
            "credential theft and lateral movement there go unseen."
        ),
        how_to_fix="Install the sensor on the domain controllers listed below.",
        required=True,
        rule=Rule("dc_sensor_coverage", {}),
        fix=Fix("environment:domain_controllers", "", "Install more Defender for Identity sensors"),
    ),
    _setting(
        "mdi.audit_policy",
        MDI,
        "Configure Windows event collection (advanced audit policy)",
        values=["configured"],
        partial=["partial"],
        required=True,
        description="Domain controllers record the Windows events Defender for Identity needs.",
        why="Without the right audit policy, the sensor misses events and many identity detections can't fire.",
        how="Apply the advanced audit policy settings for Defender for Identity through Group Policy.",
    ),
    # --- Microsoft Entra ID -------------------------------------------------------------
    Entry(
        key="entra.licences",
        product=ENTRA,
        title="Assign Microsoft Entra ID P1 or P2 licences to all enabled users",
        description="There is a Microsoft Entra ID P1 or P2 licence for every enabled user.",
        why_it_matters=(
            "Service provider access to your tenant uses cross-tenant access settings, which need Entra ID P1 or P2."
        ),
        how_to_fix=(
            "Add Entra ID P1 or P2 seats until they cover your enabled users, or disable the accounts that are no "
            "longer used."
        ),
        required=True,
        rule=Rule("licence_covers_enabled_users", {"products": ["entra_p1", "entra_p2"]}),
        fix=Fix("environment:licences", "", "Review licences"),
        measured=(
            "The purchased Entra ID P1 and P2 seats (added together) against the number of enabled users in your "
            "directory. Licences are counted as seats, not as assignments to named users, so the assessment can't "
            "tell which users are without one and lists none."
        ),
    ),
    Entry(
        key="entra.provider_access",
        product=ENTRA,
        title="Grant service provider access to our experts",
        description="Defender Experts has service provider access to your tenant.",
        why_it_matters="Without it, our experts can't sign in to your tenant to monitor and investigate incidents.",
        how_to_fix="In Settings > Defender Experts > Permissions, grant our experts access.",
        required=True,
        rule=Rule("provider_access_granted", {}),
        fix=Fix("permissions:index", "", "Go to Permissions"),
    ),
    # --- Microsoft Defender for Office 365 ---------------------------------------------
    _setting(
        "mdo.safe_links",
        MDO,
        "Turn on Safe Links",
        values=["on"],
        required=False,
        description="Safe Links checks URLs in email and Office documents at the time of click.",
        why="Links that turn malicious after delivery are blocked when someone clicks them.",
        how="Turn on Safe Links policies for all users.",
    ),
    _setting(
        "mdo.safe_attachments",
        MDO,
        "Turn on Safe Attachments",
        values=["on"],
        required=False,
        description="Safe Attachments opens attachments in a sandbox before they reach mailboxes.",
        why="Unknown malware in attachments is caught before anyone opens it.",
        how="Turn on Safe Attachments policies for all users.",
    ),
    _setting(
        "mdo.preset_policies",
        MDO,
        "Apply preset security policies",
        values=["standard", "strict"],
        required=False,
        description="The Standard or Strict preset security policy protects all mailboxes.",
        why="Preset policies apply Microsoft's recommended settings and keep them up to date as threats change.",
        how="Apply the Standard (or Strict) protection preset security policy to all recipients.",
    ),
    # --- Microsoft Defender for Cloud Apps ---------------------------------------------
    _setting(
        "mdca.m365_connector",
        MDCA,
        "Connect the Microsoft 365 app connector",
        values=["connected"],
        required=False,
        description="Defender for Cloud Apps receives activity from Microsoft 365 through the app connector.",
        why="Our experts see suspicious activity in SharePoint, OneDrive, Teams and Exchange only with it connected.",
        how="In Settings > Cloud Apps > App connectors, connect Microsoft 365.",
    ),
    # --- Microsoft Purview -----------------------------------------------------------
    _setting(
        "purview.unified_audit_log",
        PURVIEW,
        "Turn on the unified audit log",
        values=["on"],
        required=True,
        description="Microsoft Purview records user and admin activity across Microsoft 365.",
        why="Investigations rely on the audit log to reconstruct what an attacker did.",
        how="In the Microsoft Purview portal, go to Audit and turn on auditing.",
    ),
)

ENTRIES_BY_KEY: dict[str, Entry] = {entry.key: entry for entry in ENTRIES}
