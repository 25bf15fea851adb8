"""Trigram indexes for the directory search (PostgreSQL only).

The search matches ``search_text LIKE '%q%'`` on the environment app's
directory tables; a pg_trgm GIN index answers that without scanning every
row. The indexes belong to the search, so the contacts app owns them. On
SQLite (the embedded default) this migration does nothing and the search
falls back to a scan, which is fine at laptop sizes.
"""

from django.db import migrations

INDEXES = [
    ("contacts_diruser_search_trgm", "environment_directoryuser"),
    ("contacts_dirgroup_search_trgm", "environment_directorygroup"),
]


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (search_text gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0001_initial"),
        ("environment", "0002_initial"),
    ]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
