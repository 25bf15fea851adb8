"""Finer statistics for ``search_text``, so the planner can tell a rare search from a common one.

The directory search gathers word-prefix and substring matches with a
``LIMIT``: through the GIN indexes when matches are rare, or by reading the
table until enough turn up when they are common. With the default 100-entry
histogram the planner misjudges a pattern such as ``'%ohnson%'`` (1,800 of
100,000 rows) as matching one row in ten and reads the table; with 1,000 it
uses the trigram index (about 1 ms instead of 15-40 ms; bench/contacts_search.py).
"""

from django.db import migrations

TABLES = ["environment_directoryuser", "environment_directorygroup"]


class Migration(migrations.Migration):
    dependencies = [("environment", "0003_directory_search")]

    operations = [
        migrations.RunSQL(
            [f"ALTER TABLE {table} ALTER COLUMN search_text SET STATISTICS 1000" for table in TABLES],
            [f"ALTER TABLE {table} ALTER COLUMN search_text SET STATISTICS -1" for table in TABLES],
        )
    ]
