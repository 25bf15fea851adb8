"""The directory's search key, folded by PostgreSQL so that both sides of a search fold alike.

Migration ``environment/migrations/0003_directory_search.py`` defines the SQL
functions (all IMMUTABLE, so they can make a generated column and indexes):

* ``directory_fold(text)``: ``unaccent`` (the extension's rules: é -> e,
  and letters Unicode doesn't decompose, ı -> i, ø -> o, ł -> l, æ -> ae,
  þ -> th), lower case, single spaces;
* ``directory_search_text(VARIADIC text[])``: the non-empty parts, folded and
  joined by two spaces. It computes ``search_text`` ("name  mail  upn" for
  users, "name  mail" for groups), a stored generated column. A part never
  holds two spaces in a row, so the end of the name is visible to a range scan;
* ``directory_bigrams(text)``: the distinct two-letter substrings, whose GIN
  index finds two-letter substrings, which no trigram can.

The search folds what the user typed with the same ``directory_fold``, in the
same statement, so what is stored and what is typed can never fold apart.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db.models import F, Func, TextField


class Fold(Func):
    """``directory_fold(expression)``: case, accents and spacing folded as ``search_text`` is."""

    function = "directory_fold"
    output_field = TextField()


def bigrams(expression: Any) -> Func:
    """``directory_bigrams(expression)``: the distinct two-letter substrings (what their GIN index holds)."""
    return Func(expression, function="directory_bigrams", output_field=ArrayField(TextField()))


def search_text_expression(*fields: str) -> Func:
    """The generated ``search_text`` of a directory row: its ``fields``, folded, joined by spaces."""
    parts: list[Any] = [F(name) for name in fields]
    return Func(*parts, function="directory_search_text", output_field=TextField())
