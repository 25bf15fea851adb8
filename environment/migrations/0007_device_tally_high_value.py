"""The device tally also keys on ``high_value``, so that the devices the experts only advise on
(excluded groups, and high-value devices when the tenant excludes them) are summed from tally rows
instead of counted over ``environment_device`` on every view.

The rows are rebuilt from the devices: cleared before the key changes, filled again by the new
trigger function's GROUP BY afterwards, all in this migration's transaction.
"""

import importlib

from django.db import migrations, models

TALLY = "environment_devicetally"
KEY = "(tenant_id, group_key, onboarding_state, av_mode, high_value)"

POSTGRES_FUNCTION = f"""
CREATE OR REPLACE FUNCTION environment_device_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {TALLY} AS t (tenant_id, group_key, onboarding_state, av_mode, high_value, devices)
        SELECT tenant_id, COALESCE(device_group_id, 0), onboarding_state, av_mode, high_value, count(*)
        FROM new_rows GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT {KEY} DO UPDATE SET devices = t.devices + EXCLUDED.devices;
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO {TALLY} AS t (tenant_id, group_key, onboarding_state, av_mode, high_value, devices)
        SELECT tenant_id, COALESCE(device_group_id, 0), onboarding_state, av_mode, high_value, -count(*)
        FROM old_rows GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT {KEY} DO UPDATE SET devices = t.devices + EXCLUDED.devices;
        DELETE FROM {TALLY} WHERE devices = 0 AND tenant_id IN (SELECT DISTINCT tenant_id FROM old_rows);
        RETURN NULL;
    END IF;
    -- UPDATE: only the cells whose count changes (an UPDATE of last_seen writes nothing here).
    INSERT INTO {TALLY} AS t (tenant_id, group_key, onboarding_state, av_mode, high_value, devices)
    SELECT tenant_id, group_key, onboarding_state, av_mode, high_value, sum(n) FROM (
        SELECT tenant_id, COALESCE(device_group_id, 0) AS group_key, onboarding_state, av_mode, high_value, -1 AS n
        FROM old_rows
        UNION ALL
        SELECT tenant_id, COALESCE(device_group_id, 0), onboarding_state, av_mode, high_value, 1 FROM new_rows
    ) AS changes
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT {KEY} DO UPDATE SET devices = t.devices + EXCLUDED.devices;
    DELETE FROM {TALLY} WHERE devices = 0 AND tenant_id IN (SELECT DISTINCT tenant_id FROM old_rows);
    RETURN NULL;
END
$$;
"""

BACKFILL = (
    f"INSERT INTO {TALLY} (tenant_id, group_key, onboarding_state, av_mode, high_value, devices) "
    "SELECT tenant_id, COALESCE(device_group_id, 0), onboarding_state, av_mode, high_value, count(*) "
    "FROM environment_device GROUP BY 1, 2, 3, 4, 5"
)
CLEAR = f"DELETE FROM {TALLY}"

# The previous key's function and backfill, to go back.
_previous = importlib.import_module("environment.migrations.0005_device_tally")


def _check(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor != "postgresql":
        raise NotImplementedError(f"The device tally triggers are written for PostgreSQL, not {vendor}.")


def clear(apps, schema_editor):
    _check(schema_editor)
    schema_editor.execute(CLEAR, params=None)


def install(apps, schema_editor):
    _check(schema_editor)
    for sql in [POSTGRES_FUNCTION, CLEAR, BACKFILL]:
        schema_editor.execute(sql, params=None)


def install_previous(apps, schema_editor):
    _check(schema_editor)
    for sql in [_previous.POSTGRES_FUNCTION, CLEAR, _previous.BACKFILL]:
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("environment", "0006_high_value"),
    ]

    operations = [
        # Backwards, this runs last: the old key's function and rows once the old constraint is back.
        migrations.RunPython(clear, install_previous),
        migrations.RemoveConstraint(model_name="devicetally", name="device_tally_unique_cell"),
        migrations.AddField(
            model_name="devicetally",
            name="high_value",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddConstraint(
            model_name="devicetally",
            constraint=models.UniqueConstraint(
                fields=("tenant", "group_key", "onboarding_state", "av_mode", "high_value"),
                name="device_tally_unique_cell",
            ),
        ),
        migrations.RunPython(install, clear),
    ]
