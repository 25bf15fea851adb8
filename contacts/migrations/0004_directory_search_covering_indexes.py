"""Make the ordered search indexes covering on PostgreSQL.

With ``INCLUDE (id)`` the exact-name and name-prefix tiers of the directory
search are index-only scans: every value they test (the tenant and
``search_text``) and return (the id) is in the index, so no table rows are
read however many names share a first word. SQLite indexes carry the row id
already, so there is nothing to do there.
"""

from django.db import migrations

INDEXES = [
    ("contacts_diruser_search_order", "contacts_diruser_search_cover", "environment_directoryuser"),
    ("contacts_dirgroup_search_order", "contacts_dirgroup_search_cover", "environment_directorygroup"),
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for old, new, table in INDEXES:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS {new} ON {table} (tenant_id, search_text COLLATE "C") INCLUDE (id)'
        )
        schema_editor.execute(f"DROP INDEX IF EXISTS {old}")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for old, new, table in INDEXES:
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS {old} ON {table} (tenant_id, search_text COLLATE "C")')
        schema_editor.execute(f"DROP INDEX IF EXISTS {new}")


class Migration(migrations.Migration):
    dependencies = [("contacts", "0003_directory_search_ordered_indexes")]

    operations = [migrations.RunPython(forwards, backwards)]
