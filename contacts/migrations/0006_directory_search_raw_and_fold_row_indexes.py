"""Back to indexes on the raw ``search_text``, plus a trigram index of the rows to fold.

Migration 0005 indexed the folded expression, but then every scan that no
index can answer (a rare two-letter substring) folds all rows: ~15x slower at
100,000 entries. Instead the search now matches the raw text through the
indexes of migrations 0002 and 0004 (recreated here) and folds only the rows
that hold a letter to fold ("Yılmaz", "Søren"): a partial trigram index of
their folded text finds the matching ones. Its expression and predicate must
stay written exactly as ``contacts.selectors`` (``fold_sql``,
``has_fold_letters``) writes them on PostgreSQL. SQLite: nothing
to do (the search scans there).
"""

from django.db import migrations

# contacts.selectors.FOLDS as of this migration, written out (a change to
# FOLDS needs a new migration, or these indexes stop matching the search).
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
FOLD_LETTERS = "".join(letter for letter, _plain in FOLDS)


def folded(column: str) -> str:
    expr = column
    for letter, plain in FOLDS:
        expr = f"REPLACE({expr}, '{letter}', '{plain}')"
    return expr

TABLES = [
    ("environment_directoryuser", "contacts_diruser"),
    ("environment_directorygroup", "contacts_dirgroup"),
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, prefix in TABLES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {prefix}_search_trgm ON {table} USING gin (search_text gin_trgm_ops)"
        )
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS {prefix}_search_cover ON {table} (tenant_id, search_text COLLATE "C")'
            " INCLUDE (id)"
        )
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {prefix}_search_fold_trgm ON {table}"
            f" USING gin (({folded('search_text')}) gin_trgm_ops) WHERE search_text ~ '[{FOLD_LETTERS}]'"
        )
        # For two-letter queries, which no trigram index answers: just the
        # tenant's rows to fold, without testing every row of the tenant. The
        # letters are reversed on purpose: only searches that spell the
        # predicate this way (contacts.selectors.has_fold_letters_short, for
        # short queries) use this index; longer ones use the trigram index.
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {prefix}_search_fold_rows ON {table} (tenant_id) INCLUDE (id)"
            f" WHERE search_text ~ '[{FOLD_LETTERS[::-1]}]'"
        )
        schema_editor.execute(f"DROP INDEX IF EXISTS {prefix}_search_trgm_f")
        schema_editor.execute(f"DROP INDEX IF EXISTS {prefix}_search_cover_f")


def backwards(apps, schema_editor):
    # 0005's backwards recreates what it dropped; here drop only what 0006 added.
    if schema_editor.connection.vendor != "postgresql":
        return
    for _table, prefix in TABLES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {prefix}_search_fold_trgm")
        schema_editor.execute(f"DROP INDEX IF EXISTS {prefix}_search_fold_rows")


class Migration(migrations.Migration):
    dependencies = [("contacts", "0005_directory_search_folded_indexes")]

    operations = [migrations.RunPython(forwards, backwards)]
