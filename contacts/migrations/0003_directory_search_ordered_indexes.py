"""Ordered b-tree indexes for the directory search.

Each search tier takes the first few matches in ``search_text`` order. With a
``(tenant_id, search_text)`` b-tree that is a range scan for prefixes and an
ordered walk that stops after ten hits for common substrings, instead of
sorting every match. On PostgreSQL the column uses the "C" collation so that
``LIKE 'abc%'`` can use the index whatever the database collation, and the
search sorts with the same collation. SQLite's default collation already fits.
"""

from django.db import migrations

INDEXES = [
    ("contacts_diruser_search_order", "environment_directoryuser"),
    ("contacts_dirgroup_search_order", "environment_directorygroup"),
]


def create_indexes(apps, schema_editor):
    collate = ' COLLATE "C"' if schema_editor.connection.vendor == "postgresql" else ""
    for name, table in INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} (tenant_id, search_text{collate})")


def drop_indexes(apps, schema_editor):
    for name, _table in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("contacts", "0002_directory_search_trigram_indexes")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
