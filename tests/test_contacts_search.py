"""Directory search: ranking, normalisation, limits, tenant isolation, one query."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts.models import NotificationType
from contacts.selectors import (
    RANK_EXACT,
    RANK_PREFIX,
    RANK_SUBSTRING,
    directory_search,
)
from contacts.services import contact_add
from environment.models import DirectoryUser
from tests import factories

pytestmark = pytest.mark.django_db


def names(results):
    return [r.display_name for r in results]


def test_exact_before_prefix_before_substring(contoso):
    factories.directory_user(
        contoso, "Annette Lind", mail="annette@contoso.example"
    )  # substring ("ann" inside? no: prefix)
    factories.directory_user(contoso, "Joanna Ek", mail="joanna@contoso.example")  # substring
    factories.directory_user(contoso, "Ann", mail="a.sole@contoso.example")  # exact name
    factories.directory_user(contoso, "Ann Berg", mail="ann.berg@contoso.example")  # prefix
    factories.directory_user(contoso, "Lee Ann Cole", mail="lee.cole@contoso.example")  # word prefix
    results = directory_search(tenant=contoso, query="ann")
    assert names(results) == ["Ann", "Ann Berg", "Annette Lind", "Lee Ann Cole", "Joanna Ek"]
    assert [r.rank for r in results] == [RANK_EXACT, RANK_PREFIX, RANK_PREFIX, RANK_PREFIX, RANK_SUBSTRING]


def test_exact_full_name_and_exact_mail(contoso):
    factories.directory_user(contoso, "Sam Lee", mail="sam.lee@contoso.example")
    factories.directory_user(contoso, "Sam Leeds", mail="sam.leeds@contoso.example")
    factories.directory_user(contoso, "Ulla Sam Lee-Ray", mail="ulla@contoso.example")
    results = directory_search(tenant=contoso, query="Sam Lee")
    assert names(results)[0] == "Sam Lee"
    assert results[0].rank == RANK_EXACT
    assert {r.rank for r in results[1:]} == {RANK_PREFIX}
    by_mail = directory_search(tenant=contoso, query="sam.leeds@contoso.example")
    assert names(by_mail) == ["Sam Leeds"]
    assert by_mail[0].rank == RANK_EXACT


def test_upn_matches(contoso):
    factories.directory_user(
        contoso, "Priya Raman", mail="priya@contoso.example", user_principal_name="praman@corp.contoso.example"
    )
    results = directory_search(tenant=contoso, query="praman@corp")
    assert names(results) == ["Priya Raman"]
    assert results[0].rank == RANK_PREFIX
    assert directory_search(tenant=contoso, query="PRAMAN@corp.contoso.example")[0].rank == RANK_EXACT


def test_case_and_accents_are_ignored_both_ways(contoso):
    factories.directory_user(contoso, "Zoë Ångström", mail="zoe.angstrom@contoso.example")
    factories.directory_user(contoso, "Zoe Angstrom", mail="zoe2@contoso.example")
    assert sorted(names(directory_search(tenant=contoso, query="zoe angstrom"))) == ["Zoe Angstrom", "Zoë Ångström"]
    assert sorted(names(directory_search(tenant=contoso, query="ZOË ÅNGSTRÖM"))) == ["Zoe Angstrom", "Zoë Ångström"]
    exact = directory_search(tenant=contoso, query="Zoe Ångström")
    assert {r.rank for r in exact} == {RANK_EXACT}


@pytest.mark.parametrize(
    ("name", "typed"),
    [
        ("Amélie Yılmaz", "yilmaz"),
        ("Søren Abbott", "soren"),
        ("Łukasz Kaur", "lukasz"),
        ("Æsa Đorđević", "aesa dordevic"),
        ("Þóra Hœgh", "thora hoegh"),
    ],
)
def test_letters_unicode_does_not_decompose_are_folded_too(contoso, name, typed):
    # The demo directory has "Yılmaz", "Søren" and "Łukasz": NFKD leaves ı, ø
    # and ł alone, so without folding, typing the plain letters found nobody.
    factories.directory_user(contoso, name, mail="someone@contoso.example")
    factories.directory_user(contoso, "Somebody Else", mail="else@contoso.example")
    assert names(directory_search(tenant=contoso, query=typed)) == [name]
    assert names(directory_search(tenant=contoso, query=typed.upper())) == [name]
    # Typed with the letters themselves, it still matches, and the whole name ranks exact.
    (result,) = directory_search(tenant=contoso, query=name)
    assert result.rank == RANK_EXACT
    (result,) = directory_search(tenant=contoso, query=typed)
    assert result.rank == (RANK_EXACT if " " in typed else RANK_PREFIX)


def test_accented_address_in_search_text_still_ranks_exact_name(contoso):
    # The factory builds mails from names, so this one's mail keeps its accent
    # while search_text strips it: the exact-name test must not depend on mail.
    factories.directory_user(contoso, "Zoë Adams")
    results = directory_search(tenant=contoso, query="zoe adams")
    assert results[0].rank == RANK_EXACT


def test_at_most_ten_results_best_first(contoso):
    for i in range(15):
        factories.directory_user(contoso, f"Mira Substring{i:02d}", mail=f"x{i}@contoso.example")
    factories.directory_user(contoso, "Tester", mail="t@contoso.example")
    factories.directory_user(contoso, "Ramira", mail="r@contoso.example")
    results = directory_search(tenant=contoso, query="mira")
    assert len(results) == 10
    assert all(r.rank == RANK_PREFIX for r in results)
    assert "Ramira" not in names(results)
    assert len(directory_search(tenant=contoso, query="mira", limit=50)) == 10
    assert len(directory_search(tenant=contoso, query="mira", limit=3)) == 3


def test_results_never_come_from_another_tenant(contoso, fabrikam):
    factories.directory_user(contoso, "Nina Contoso", mail="nina@contoso.example")
    factories.directory_user(fabrikam, "Nina Fabrikam", mail="nina@fabrikam.example")
    factories.directory_group(fabrikam, "Nina Fans", mail="fans@fabrikam.example")
    assert names(directory_search(tenant=contoso, query="nina")) == ["Nina Contoso"]
    assert sorted(names(directory_search(tenant=fabrikam, query="nina"))) == ["Nina Fabrikam", "Nina Fans"]


def test_users_and_groups_together_with_member_counts_and_reasons(contoso):
    alice = factories.directory_user(contoso, "Alice Ops", mail="alice@contoso.example")
    bob = factories.directory_user(contoso, "Bob Ops", mail="bob@contoso.example", enabled=False)
    factories.directory_group(contoso, "Ops Team", members=[alice, bob], mail="ops@contoso.example")
    factories.directory_group(contoso, "Ops Readers", mail="", mail_enabled=False, security_enabled=True)
    results = {r.display_name: r for r in directory_search(tenant=contoso, query="ops")}
    assert set(results) == {"Alice Ops", "Bob Ops", "Ops Team", "Ops Readers"}
    team = results["Ops Team"]
    assert team.is_team and team.member_count == 2 and team.can_add
    assert results["Ops Readers"].refusal == "This group can't receive email"
    assert not results["Ops Readers"].can_add
    assert results["Bob Ops"].refusal == "This user is disabled"
    assert results["Alice Ops"].can_add and not results["Alice Ops"].is_team


def test_results_say_which_types_the_entry_already_holds(contoso, admin):
    alice = factories.directory_user(contoso, "Alice Held", mail="alice@contoso.example")
    contact_add(
        tenant=contoso, acting_user=admin, notification_type=NotificationType.INCIDENT, directory_user_id=alice.pk
    )
    (result,) = directory_search(tenant=contoso, query="alice held")
    assert result.held_types == {"incident"}


def test_short_or_blank_queries_do_not_hit_the_database(contoso, django_assert_num_queries):
    factories.directory_user(contoso, "A")
    with django_assert_num_queries(0):
        assert directory_search(tenant=contoso, query="a") == []
        assert directory_search(tenant=contoso, query="   ") == []
        assert directory_search(tenant=contoso, query="é") == []


def test_no_match_is_an_empty_list(contoso):
    factories.directory_user(contoso, "Someone")
    assert directory_search(tenant=contoso, query="zzzz") == []


def test_like_wildcards_are_literal(contoso):
    factories.directory_user(contoso, "Under Score", mail="under_score@contoso.example")
    factories.directory_user(contoso, "Underxscore", mail="underxscore@contoso.example")
    factories.directory_user(contoso, "Percent", mail="percent@contoso.example")
    assert names(directory_search(tenant=contoso, query="under_s")) == ["Under Score"]
    assert directory_search(tenant=contoso, query="%%") == []
    assert directory_search(tenant=contoso, query="\\\\") == []


def _bulk_directory(tenant, count):
    DirectoryUser.objects.bulk_create(
        [
            DirectoryUser(
                tenant=tenant,
                display_name=f"Bulk Person {i}",
                user_principal_name=f"bulk{i}@{tenant.primary_domain}",
                mail=f"bulk{i}@{tenant.primary_domain}",
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    for i in range(count // 100 + 1):
        factories.directory_group(tenant, f"Bulk Team {i}", members=[])


@pytest.mark.parametrize("size", [20, 2000])
def test_search_is_one_query_whatever_the_size(contoso, admin, django_assert_num_queries, size):
    _bulk_directory(contoso, size)
    alice = factories.directory_user(contoso, "Bulk Alice", mail="alice@contoso.example")
    contact_add(
        tenant=contoso, acting_user=admin, notification_type=NotificationType.INCIDENT, directory_user_id=alice.pk
    )
    # One statement: users and groups in a UNION ALL, member counts and
    # "already a contact" as subqueries of the limited hits.
    with django_assert_num_queries(1):
        results = directory_search(tenant=contoso, query="bulk")
    assert len(results) == 10


def test_the_search_indexes_are_declared_by_the_directory_models(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'dir_%%_search%%' ORDER BY 1")
        indexes = dict(cursor.fetchall())
    assert sorted(indexes) == [
        "dir_group_search",
        "dir_group_search_bigram",
        "dir_group_search_trgm",
        "dir_user_search",
        "dir_user_search_bigram",
        "dir_user_search_trgm",
    ]
    assert "(tenant_id, search_text) INCLUDE (id)" in indexes["dir_user_search"]
    assert "gin (search_text gin_trgm_ops)" in indexes["dir_user_search_trgm"]
    assert "gin (directory_bigrams(search_text))" in indexes["dir_user_search_bigram"]


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        # As at 100,000 entries, where reading every row of the tenant is the slowest way.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(r[0] for r in cursor.fetchall())


def _search_sql(tenant, query: str) -> str:
    with CaptureQueriesContext(connection) as ctx:
        directory_search(tenant=tenant, query=query)
    (captured,) = ctx.captured_queries
    return captured["sql"]


def test_the_search_is_planned_on_its_indexes(contoso):
    # The folded query reaches the planner as a constant (directory_fold is
    # IMMUTABLE), so each tier can use an index. With a few thousand entries
    # (and fresh statistics) the planner picks them; EXPLAIN names them.
    _bulk_directory(contoso, 3000)
    factories.directory_user(contoso, "Planned Person", mail="planned@contoso.example")
    factories.directory_user(contoso, "Søren Planø", mail="soren@contoso.example")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE environment_directoryuser")
    plan = _plan(_search_sql(contoso, "lanned"))
    # Exact names and prefixes: range scans of the covering b-tree, reading the index only.
    assert re.search(r"Index Only Scan using dir_user_search on .*\n.*Index Cond: .*search_text >= 'lanned'", plan), (
        plan
    )
    # Substrings of three letters or more: pg_trgm's index.
    assert re.search(r"Bitmap Index Scan on dir_user_search_trgm .*\n.*Index Cond: .*'%lanned%'", plan), plan
    # Two letters have no trigram: the index of two-letter substrings answers.
    plan = _plan(_search_sql(contoso, "XQ"))
    assert re.search(r"Bitmap Index Scan on dir_user_search_bigram .*\n.*Index Cond: .*'\{xq\}'", plan), plan
    # Accents and case are folded while planning too: "PLANØ" is 'plano' before any index is used.
    plan = _plan(_search_sql(contoso, "PLANØ"))
    assert re.search(r"Bitmap Index Scan on dir_user_search_trgm .*\n.*Index Cond: .*'%plano%'", plan), plan


def test_two_letter_substrings_are_found_anywhere_in_a_word(contoso):
    factories.directory_user(contoso, "Alexqi Brown", mail="ab@contoso.example")
    factories.directory_user(contoso, "Xquisite Søren", mail="xs@contoso.example")
    results = directory_search(tenant=contoso, query="xq")
    assert names(results) == ["Xquisite Søren", "Alexqi Brown"]
    assert [r.rank for r in results] == [RANK_PREFIX, RANK_SUBSTRING]


def test_exact_match_survives_many_alphabetically_earlier_prefixes(contoso):
    # "ann aa00…" sorts before "ann  zz.ann@…"; the exact tier keeps "Ann" in.
    for i in range(12):
        factories.directory_user(contoso, f"Ann Aa{i:02d}", mail=f"aa{i}@contoso.example")
    factories.directory_user(contoso, "Ann", mail="zz.ann@contoso.example")
    results = directory_search(tenant=contoso, query="ann")
    assert results[0].display_name == "Ann" and results[0].rank == RANK_EXACT


def test_prefix_matches_beat_more_substrings_than_are_shown(contoso):
    # Twenty substring matches sort before every prefix match: the prefixes still come first.
    for i in range(20):
        factories.directory_user(contoso, f"Aaa Xkira{i:02d}", mail=f"s{i}@contoso.example")  # substring "kira"
    for name in ("Zed Kira", "Yan Kiraly", "Kira Zulu"):
        factories.directory_user(contoso, name, mail=f"{name.split()[0].lower()}@contoso.example")
    results = directory_search(tenant=contoso, query="kira")
    assert names(results)[:3] == ["Kira Zulu", "Yan Kiraly", "Zed Kira"]
    assert [r.rank for r in results[:3]] == [RANK_PREFIX] * 3
    assert {r.rank for r in results[3:]} == {RANK_SUBSTRING}
    assert len(results) == 10


def test_spacing_inside_a_name_is_folded_like_the_query(contoso):
    # Stored names may hold tabs or runs of spaces; the query's are collapsed too.
    factories.directory_user(contoso, "Ann \t  Berg\u00a0Vik", mail="abv@contoso.example")
    (result,) = directory_search(tenant=contoso, query="  ann   berg vik ")
    assert result.rank == RANK_EXACT
