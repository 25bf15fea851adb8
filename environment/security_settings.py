"""The product settings the emulated environment holds, and their values.

This is the environment's vocabulary only. Which values count as "done" for
readiness is decided by the readiness catalogue, not here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SettingSpec:
    key: str
    product: str
    label: str
    choices: tuple[tuple[str, str], ...]
    default: str


ON_OFF = (("on", "On"), ("off", "Off"))
BLOCK_AUDIT_OFF = (("block", "Block"), ("audit", "Audit"), ("off", "Off"))

MDE = "Microsoft Defender for Endpoint"
MDI = "Microsoft Defender for Identity"
ENTRA = "Microsoft Entra ID"
MDO = "Microsoft Defender for Office 365"
MDCA = "Microsoft Defender for Cloud Apps"
PURVIEW = "Microsoft Purview"

SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("mde.tamper_protection", MDE, "Tamper protection", ON_OFF, "off"),
    SettingSpec("mde.cloud_protection", MDE, "Cloud-delivered protection", ON_OFF, "off"),
    SettingSpec("mde.edr_block_mode", MDE, "EDR in block mode", ON_OFF, "off"),
    SettingSpec("mde.network_protection", MDE, "Network protection", BLOCK_AUDIT_OFF, "off"),
    SettingSpec(
        "mde.air_level",
        MDE,
        "Automated investigation and remediation",
        (
            ("full", "Full – remediate threats automatically"),
            ("semi", "Semi – require approval"),
            ("none", "No automated response"),
        ),
        "semi",
    ),
    SettingSpec("mde.asr_rules", MDE, "Recommended attack surface reduction rules", BLOCK_AUDIT_OFF, "audit"),
    SettingSpec("mde.pua_protection", MDE, "Potentially unwanted application (PUA) protection", BLOCK_AUDIT_OFF, "off"),
    SettingSpec(
        "mdi.audit_policy",
        MDI,
        "Windows event collection (advanced audit policy)",
        (("configured", "Configured"), ("partial", "Partially configured"), ("not_configured", "Not configured")),
        "not_configured",
    ),
    SettingSpec("mdo.safe_links", MDO, "Safe Links", ON_OFF, "off"),
    SettingSpec("mdo.safe_attachments", MDO, "Safe Attachments", ON_OFF, "off"),
    SettingSpec(
        "mdo.preset_policies",
        MDO,
        "Preset security policies",
        (("strict", "Strict protection"), ("standard", "Standard protection"), ("off", "Off")),
        "off",
    ),
    SettingSpec(
        "mdca.m365_connector",
        MDCA,
        "Microsoft 365 app connector",
        (("connected", "Connected"), ("disconnected", "Not connected")),
        "disconnected",
    ),
    SettingSpec("purview.unified_audit_log", PURVIEW, "Unified audit log", ON_OFF, "off"),
)

SETTINGS_BY_KEY: dict[str, SettingSpec] = {spec.key: spec for spec in SETTINGS}
