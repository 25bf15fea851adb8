"""Index the folded ``search_text`` the directory search now matches (PostgreSQL).

The search folds letters that Unicode doesn't decompose ("ı", "ø", "ł", ...;
see ``contacts.selectors.FOLDS``) on both sides, so it compares
``fold_sql(search_text)`` instead of the bare column. PostgreSQL only uses an
index whose expression is exactly that, so the trigram and covering b-tree
indexes of migrations 0002 and 0004 are rebuilt over the expression. On
SQLite (the embedded default) there is nothing to do: the search scans there.

The expression is written out here, not imported, so that this migration
keeps meaning what it meant if ``FOLDS`` changes later (a change needs a new
migration).
"""

from django.db import migrations

FOLDS = (
    ("ı", "i"),
    ("ø", "o"),
    ("ł", "l"),
    ("đ", "d"),
    ("ð", "d"),
    ("ħ", "h"),
    ("ŧ", "t"),
    ("ŀ", "l"),
    ("ĸ", "k"),
    ("æ", "ae"),
    ("œ", "oe"),
    ("þ", "th"),
)


def folded(column: str) -> str:
    expr = column
    for letter, plain in FOLDS:
        expr = f"REPLACE({expr}, '{letter}', '{plain}')"
    return expr


TABLES = [
    ("environment_directoryuser", "contacts_diruser_search_trgm", "contacts_diruser_search_cover"),
    ("environment_directorygroup", "contacts_dirgroup_search_trgm", "contacts_dirgroup_search_cover"),
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    expr = folded("search_text")
    for table, trgm, cover in TABLES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {trgm}_f ON {table} USING gin (({expr}) gin_trgm_ops)")
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS {cover}_f ON {table} (tenant_id, ({expr}) COLLATE "C") INCLUDE (id)'
        )
        schema_editor.execute(f"DROP INDEX IF EXISTS {trgm}")
        schema_editor.execute(f"DROP INDEX IF EXISTS {cover}")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, trgm, cover in TABLES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {trgm} ON {table} USING gin (search_text gin_trgm_ops)")
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS {cover} ON {table} (tenant_id, search_text COLLATE "C") INCLUDE (id)'
        )
        schema_editor.execute(f"DROP INDEX IF EXISTS {trgm}_f")
        schema_editor.execute(f"DROP INDEX IF EXISTS {cover}_f")


class Migration(migrations.Migration):
    dependencies = [("contacts", "0004_directory_search_covering_indexes")]

    operations = [migrations.RunPython(forwards, backwards)]
