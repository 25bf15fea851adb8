"""The directory search's index migrations 0002-0006, squashed: nothing left to do here.

They built trigram and b-tree indexes (over a Python-folded ``search_text``,
then over hand-written letter folds) on the environment app's directory
tables. The search now runs on ``search_text`` folded by PostgreSQL's
unaccent, and its indexes are declared by the tables' own models
(``environment/migrations/0003_directory_search.py``), which also removes the
old ones on a database that had them.
"""

from django.db import migrations


class Migration(migrations.Migration):
    replaces = [
        ("contacts", "0002_directory_search_trigram_indexes"),
        ("contacts", "0003_directory_search_ordered_indexes"),
        ("contacts", "0004_directory_search_covering_indexes"),
        ("contacts", "0005_directory_search_folded_indexes"),
        ("contacts", "0006_directory_search_raw_and_fold_row_indexes"),
    ]

    dependencies = [("contacts", "0001_initial")]

    operations = []
