"""Keyset pagination for lists ordered by one column with the id as tie-breaker.

A page is found from the row at its edge (``name > last name, or same name and id > last id``),
never by OFFSET, and the list's length is counted over a LIMIT: any page of any list costs the
same two queries. Lists read newest first (the audit log) pass ``descending=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Generic, TypeVar

from django.db.models import Model, Q, QuerySet

M = TypeVar("M", bound=Model)

# A list's length is counted up to this many rows (a COUNT over a LIMIT), then shown as "more than".
COUNT_LIMIT = 10_000


@dataclass(frozen=True)
class PageCount:
    """What the template asks a paginator for."""

    count: int
    num_pages: int
    more: bool  # ``count`` is the limit and there are more


@dataclass(frozen=True)
class KeysetPage(Generic[M]):
    """One page of a list ordered by ``field`` then id. ``number`` is the page's position for display,
    carried in the links; ``prefix`` names the links' parameters when a page shows two lists."""

    object_list: list[M]
    number: int
    has_previous: bool
    has_next: bool
    paginator: PageCount
    field: str
    prefix: str = ""
    # The cursor that shows this page again (for forms that return to it); empty on the first page.
    current: dict[str, str] = dataclass_field(default_factory=dict)

    def __iter__(self) -> Iterator[M]:
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)

    def _cursor(self, row: M) -> str:
        return f"{_cursor_text(getattr(row, self.field))}~{row.pk}"

    @property
    def previous_query(self) -> dict[str, str]:
        return {
            f"{self.prefix}before": self._cursor(self.object_list[0]),
            f"{self.prefix}page": str(max(self.number - 1, 1)),
        }

    @property
    def next_query(self) -> dict[str, str]:
        return {
            f"{self.prefix}after": self._cursor(self.object_list[-1]),
            f"{self.prefix}page": str(self.number + 1),
        }


def _cursor_text(value: Any) -> str:
    # Dates and times travel as ISO 8601, which their parsers read back exactly.
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _parse_cursor(raw: Any, value_of: Callable[[str], Any] | None) -> tuple[Any, int] | None:
    """``value~id`` from a link (the value may hold ``~`` itself); anything else is no cursor: the first page.
    ``value_of`` turns the text into the column's type and raises ValueError for a value it can't take."""
    value, sep, pk = str(raw or "")[:400].rpartition("~")
    if not sep or not pk.isdigit() or len(pk) > 18:
        return None
    if value_of is None:
        return value, int(pk)
    try:
        return value_of(value), int(pk)
    except ValueError:
        return None


def _position(raw: Any) -> int:
    text = str(raw or "").strip()
    return int(text) if text.isdigit() and len(text) < 10 else 1


def keyset_page(
    qs: QuerySet[M],
    *,
    field: str,
    per_page: int,
    after: Any = "",
    before: Any = "",
    number: Any = 1,
    prefix: str = "",
    count_limit: int | None = None,
    descending: bool = False,
    value_of: Callable[[str], Any] | None = None,
) -> KeysetPage[M]:
    """The rows of ``qs`` (ordered by ``field``, then id; the other way round when ``descending``) after
    the ``after`` cursor, before the ``before`` cursor, or the first ones: two queries, the bounded count
    and the page. ``value_of`` reads a cursor's value when the column isn't text."""
    base = qs
    limit = COUNT_LIMIT if count_limit is None else count_limit
    # Only the ids are counted: the page's annotations and joins aren't computed for the rows counted.
    found = qs.order_by().values("pk")[: limit + 1].count()
    more = found > limit
    count = min(found, limit)
    num_pages = max(1, -(-count // per_page))
    back, forward = _parse_cursor(before, value_of), _parse_cursor(after, value_of)
    # "Past" is the direction the list reads in; "back" the other one.
    past, back_op = ("lt", "gt") if descending else ("gt", "lt")
    reading = (f"-{field}", "-id") if descending else (field, "id")
    reversed_order = (field, "id") if descending else (f"-{field}", "-id")
    if back is not None:
        value, pk = back
        earlier = Q(**{f"{field}__{back_op}": value}) | Q(**{field: value, f"pk__{back_op}": pk})
        rows = list(qs.filter(earlier).order_by(*reversed_order)[: per_page + 1])
        has_previous = len(rows) > per_page
        rows = rows[:per_page][::-1]
        has_next = True
    else:
        if forward is not None:
            value, pk = forward
            qs = qs.filter(Q(**{f"{field}__{past}": value}) | Q(**{field: value, f"pk__{past}": pk}))
        rows = list(qs.order_by(*reading)[: per_page + 1])
        has_previous = forward is not None
        has_next = len(rows) > per_page
        rows = rows[:per_page]
    if not rows and (back is not None or forward is not None):
        # A cursor past either end (an old link, rows deleted since): the first page.
        return keyset_page(
            base,
            field=field,
            per_page=per_page,
            prefix=prefix,
            count_limit=limit,
            descending=descending,
            value_of=value_of,
        )
    used = back if back is not None else forward
    direction = "before" if back is not None else "after"
    position = _position(number)
    if not has_previous:
        position = 1
    elif not has_next and not more:
        position = num_pages
    position = max(position, 2 if has_previous else 1)
    if not more:
        position = min(position, num_pages)
    return KeysetPage(
        object_list=rows,
        number=position,
        has_previous=has_previous,
        has_next=has_next,
        paginator=PageCount(count=count, num_pages=num_pages, more=more),
        field=field,
        prefix=prefix,
        current={}
        if used is None
        else {
            f"{prefix}{direction}": f"{_cursor_text(used[0])}~{used[1]}",
            f"{prefix}page": str(position),
        },
    )
