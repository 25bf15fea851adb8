"""Script the emulated environment: ``python manage.py environment --tenant contoso.example <subcommand>``.

Subcommands call the same services as the portal, as the system
(``acting_user=None``), so every change is audited and timestamped:

* ``onboard (--group NAME [--count N] | --count N | --device NAME...)``
* ``av-mode MODE (--group NAME [--from MODE] | --from MODE | --all)``
* ``install-sensor DC_NAME`` / ``uninstall-sensor DC_NAME``
* ``set-setting KEY VALUE``
* ``set-licence PRODUCT SEATS``
* ``show``
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from core.errors import ApplicationError
from environment import selectors, services
from environment.models import AntivirusMode, Device, DeviceGroup, DomainController, LicenceProduct
from environment.security_settings import SETTINGS
from tenancy.models import Tenant


class Command(BaseCommand):
    help = (
        "Change a tenant's emulated Microsoft environment "
        "(onboard devices, antivirus mode, sensors, settings, licences)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--tenant", required=True, help="The tenant's primary domain (or name), e.g. contoso.example."
        )
        sub = parser.add_subparsers(dest="subcommand", required=True, parser_class=type(parser))

        onboard = sub.add_parser("onboard", help="Onboard devices to Defender for Endpoint.")
        onboard.add_argument("--group", help="Onboard the devices of this device group.")
        onboard.add_argument("--count", type=int, help="Onboard at most N devices that aren't onboarded yet.")
        onboard.add_argument("--device", nargs="+", metavar="NAME", help="Onboard these devices (by name).")

        av = sub.add_parser("av-mode", help="Switch Defender Antivirus mode.")
        av.add_argument("mode", choices=AntivirusMode.values)
        av.add_argument("--group", help="Only devices of this device group.")
        av.add_argument("--from", dest="from_mode", choices=AntivirusMode.values, help="Only devices in this mode.")
        av.add_argument("--all", action="store_true", help="Every device of the tenant.")

        install = sub.add_parser(
            "install-sensor", help="Install the Defender for Identity sensor on a domain controller."
        )
        install.add_argument("dc_name")
        uninstall = sub.add_parser("uninstall-sensor", help="Remove the Defender for Identity sensor.")
        uninstall.add_argument("dc_name")

        setting = sub.add_parser("set-setting", help="Set a security setting.")
        setting.add_argument("key", help="One of: " + ", ".join(s.key for s in SETTINGS))
        setting.add_argument("value")

        licence = sub.add_parser("set-licence", help="Set the seats of a licence.")
        licence.add_argument("product", help="One of: " + ", ".join(LicenceProduct.values))
        licence.add_argument("seats", type=int)

        sub.add_parser("show", help="Print a summary of the environment.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = self._tenant(options["tenant"])
        handler = getattr(self, "_" + options["subcommand"].replace("-", "_"))
        try:
            handler(tenant, options)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None

    # --- lookups ---------------------------------------------------------------------------

    def _tenant(self, value: str) -> Tenant:
        tenant = Tenant.objects.filter(Q(primary_domain__iexact=value) | Q(name__iexact=value)).first()
        if tenant is None:
            raise CommandError(f"No tenant with the domain or name “{value}”.")
        return tenant

    def _group(self, tenant: Tenant, name: str | None) -> DeviceGroup | None:
        if name is None:
            return None
        group = DeviceGroup.objects.filter(tenant=tenant, name__iexact=name).first()
        if group is None:
            names = ", ".join(DeviceGroup.objects.filter(tenant=tenant).values_list("name", flat=True))
            raise CommandError(f"{tenant.name} has no device group “{name}”. Device groups: {names}.")
        return group

    def _dc(self, tenant: Tenant, name: str) -> DomainController:
        # Either the full name or the host part ("CTS-DC03" for "CTS-DC03.corp.contoso.example").
        dc = (
            DomainController.objects.filter(tenant=tenant)
            .filter(Q(name__iexact=name) | Q(name__istartswith=f"{name}."))
            .order_by("name")
            .first()
        )
        if dc is None:
            names = ", ".join(DomainController.objects.filter(tenant=tenant).values_list("name", flat=True))
            raise CommandError(f"{tenant.name} has no domain controller “{name}”. Domain controllers: {names}.")
        return dc

    # --- subcommands ------------------------------------------------------------------------

    def _onboard(self, tenant: Tenant, options: dict[str, Any]) -> None:
        group = self._group(tenant, options["group"])
        names: list[str] | None = options["device"]
        if names and (group is not None or options["count"] is not None):
            raise CommandError("Use --device on its own, or --group and/or --count.")
        if not names and group is None and options["count"] is None:
            raise CommandError("Choose devices with --group NAME, --count N or --device NAME...")
        device_ids = None
        if names:
            found = dict(Device.objects.filter(tenant=tenant, name__in=names).values_list("name", "id"))
            missing = sorted(set(names) - set(found))
            if missing:
                raise CommandError(f"{tenant.name} has no device named: {', '.join(missing)}.")
            device_ids = list(found.values())
        n = services.devices_onboard(
            tenant=tenant, acting_user=None, device_ids=device_ids, device_group=group, count=options["count"]
        )
        self.stdout.write(f"Onboarded {n:,} device{'s' if n != 1 else ''}.")

    def _av_mode(self, tenant: Tenant, options: dict[str, Any]) -> None:
        group = self._group(tenant, options["group"])
        if options["all"] and (group is not None or options["from_mode"]):
            raise CommandError("Use --all on its own, or --group and/or --from.")
        if not options["all"] and group is None and not options["from_mode"]:
            raise CommandError("Choose devices with --group NAME, --from MODE or --all.")
        n = services.devices_set_antivirus_mode(
            tenant=tenant,
            acting_user=None,
            mode=options["mode"],
            device_group=group,
            from_mode=options["from_mode"],
            all_devices=options["all"],
        )
        self.stdout.write(f"Defender Antivirus set to {options['mode']} mode on {n:,} device{'s' if n != 1 else ''}.")

    def _install_sensor(self, tenant: Tenant, options: dict[str, Any]) -> None:
        dc = self._dc(tenant, options["dc_name"])
        services.domain_controller_install_sensor(tenant=tenant, acting_user=None, domain_controller=dc)
        self.stdout.write(f"Sensor installed on {dc.name}.")

    def _uninstall_sensor(self, tenant: Tenant, options: dict[str, Any]) -> None:
        dc = self._dc(tenant, options["dc_name"])
        services.domain_controller_uninstall_sensor(tenant=tenant, acting_user=None, domain_controller=dc)
        self.stdout.write(f"Sensor removed from {dc.name}.")

    def _set_setting(self, tenant: Tenant, options: dict[str, Any]) -> None:
        row = services.security_setting_set(tenant=tenant, acting_user=None, key=options["key"], value=options["value"])
        state = "set" if row is not None else "already"
        self.stdout.write(f"{options['key']} {state} {options['value']}.")

    def _set_licence(self, tenant: Tenant, options: dict[str, Any]) -> None:
        row = services.licence_set_seats(
            tenant=tenant, acting_user=None, product=options["product"], seats=options["seats"]
        )
        state = "now has" if row is not None else "already has"
        self.stdout.write(f"{options['product']} {state} {options['seats']:,} seats.")

    def _show(self, tenant: Tenant, options: dict[str, Any]) -> None:
        devices = selectors.device_counts(tenant=tenant)
        identities = selectors.identity_counts(tenant=tenant)
        w = self.stdout.write
        w(
            f"{tenant.name} ({tenant.primary_domain}) — environment changed "
            f"{tenant.environment_changed_at:%Y-%m-%d %H:%M:%S} UTC"
        )
        w(
            f"Devices: {devices.total:,} total, {devices.onboarded:,} onboarded, {devices.protected:,} protected; "
            f"antivirus {devices.active:,} active, {devices.passive:,} passive, {devices.disabled:,} disabled"
        )
        for g in devices.groups:
            w(
                f"  {g.name}: {g.total:,} devices, {g.onboarded:,} onboarded, "
                f"{g.passive:,} passive, {g.disabled:,} disabled, {g.protected:,} protected"
            )
        w(
            f"Identities: {identities.identities:,} hybrid, {identities.protected:,} protected "
            f"({identities.users:,} users, {identities.enabled_users:,} enabled)"
        )
        for dc in selectors.domain_controllers_with_identities(tenant=tenant):
            w(
                f"  {dc.name}: sensor {'installed' if dc.sensor_installed else 'not installed'}, "
                f"{dc.identity_count:,} identities"
            )
        w("Licences:")
        for lic in selectors.licence_usage(tenant=tenant, devices=devices, identities=identities):
            used = "not measured" if lic.used is None else f"{lic.used:,} {lic.used_label}"
            w(f"  {lic.product}: {lic.seats:,} seats, {used}")
        w("Security settings:")
        for s in selectors.security_settings(tenant=tenant):
            w(f"  {s.key} = {s.value}{' (default)' if s.is_default else ''}")
