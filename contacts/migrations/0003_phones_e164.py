"""Every stored phone number in E.164 ("+14255550142"), the one form the portal reads.

Rows written before numbers were normalised may hold "+1 425-555-0142" or
"+44 (0)20 7946 0958". A number libphonenumber recognises as valid is rewritten
in E.164; anything else is left as it is (the page shows it unchanged, and the
next edit goes through the service, which refuses it until it is fixed).
"""

from __future__ import annotations

from typing import Any

import phonenumbers
from django.db import migrations


def normalise(apps: Any, schema_editor: Any) -> None:
    contact_model = apps.get_model("contacts", "NotificationContact")
    for contact in contact_model.objects.exclude(phone="").only("pk", "phone").iterator():
        raw = contact.phone.strip()
        try:
            parsed = phonenumbers.parse(raw if raw.startswith("+") else f"+{raw}", None)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(parsed):
            continue
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if e164 != contact.phone:
            contact_model.objects.filter(pk=contact.pk).update(phone=e164)


class Migration(migrations.Migration):
    dependencies = [("contacts", "0002_directory_search_squashed")]

    operations = [migrations.RunPython(normalise, migrations.RunPython.noop)]
