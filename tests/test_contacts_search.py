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
    fold_sql,
    has_fold_letters,
)
from contacts.services import contact_add
from environment.models import DirectoryUser
from environment.search import directory_search_text
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
                search_text=directory_search_text(
                    f"Bulk Person {i}", f"bulk{i}@{tenant.primary_domain}", f"bulk{i}@{tenant.primary_domain}"
                ),
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


def test_postgres_has_trigram_covering_and_fold_row_indexes(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'contacts_dir%%_search_%%' ORDER BY 1"
        )
        indexes = dict(cursor.fetchall())
    assert sorted(indexes) == [
        "contacts_dirgroup_search_cover",
        "contacts_dirgroup_search_fold_rows",
        "contacts_dirgroup_search_fold_trgm",
        "contacts_dirgroup_search_trgm",
        "contacts_diruser_search_cover",
        "contacts_diruser_search_fold_rows",
        "contacts_diruser_search_fold_trgm",
        "contacts_diruser_search_trgm",
    ]
    assert "gin_trgm_ops" in indexes["contacts_diruser_search_trgm"]
    assert "INCLUDE (id)" in indexes["contacts_diruser_search_cover"]
    assert "gin_trgm_ops" in indexes["contacts_diruser_search_fold_trgm"]
    assert "replace(" in indexes["contacts_diruser_search_fold_trgm"]
    assert "WHERE (search_text ~" in indexes["contacts_diruser_search_fold_trgm"]


def test_postgres_plans_the_search_on_its_indexes(contoso):
    # An index is only used if the search's condition is written the way the
    # index expects; EXPLAIN (with sequential scans discouraged, as at
    # 100,000 entries) names them.
    factories.directory_user(contoso, "Planned Person", mail="planned@contoso.example")
    factories.directory_user(contoso, "Søren Planø", mail="soren@contoso.example")
    with CaptureQueriesContext(connection) as ctx:
        directory_search(tenant=contoso, query="lanned")
    sql = ctx.captured_queries[0]["sql"]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(r[0] for r in cursor.fetchall())
    # Exact and prefix tiers: range scans of the covering b-tree (index only).
    assert re.search(r"Index Only Scan using contacts_diruser_search_cover .*\n.*Index Cond: .*search_text", plan), plan
    with connection.cursor() as cursor:
        # The substring pool's predicate is the one the trigram index answers
        # (at this tiny size the planner would rather scan, so leave it no other way).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_indexonlyscan = off")
        cursor.execute("EXPLAIN SELECT id FROM environment_directoryuser u WHERE u.search_text LIKE %s", ["%lanned%"])
        plan = "\n".join(r[0] for r in cursor.fetchall())
        assert "Bitmap Index Scan on contacts_diruser_search_trgm" in plan, plan
        # Only the rows holding a letter to fold are folded: their own trigram
        # index (expression and predicate exactly as the search writes them).
        assert has_fold_letters("u.search_text") in sql and fold_sql("u.search_text") in sql
        cursor.execute(
            f"EXPLAIN SELECT id FROM environment_directoryuser u WHERE {has_fold_letters('u.search_text')}"
            f" AND {fold_sql('u.search_text')} LIKE %s",
            ["%plano%"],
        )
        plan = "\n".join(r[0] for r in cursor.fetchall())
    assert "Bitmap Index Scan on contacts_diruser_search_fold_trgm" in plan, plan


def test_search_works_on_sqlite_syntax(contoso):
    # The SQL uses only portable constructs (CTE, UNION ALL, LIKE ESCAPE, ||,
    # LENGTH/REPLACE); run it through CaptureQueriesContext to show the text.
    factories.directory_user(contoso, "Portable Pat", mail="pat@contoso.example")
    with CaptureQueriesContext(connection) as ctx:
        assert names(directory_search(tenant=contoso, query="pat")) == ["Portable Pat"]
    sql = ctx.captured_queries[0]["sql"]
    assert "UNION ALL" in sql and "ILIKE" not in sql


def test_exact_match_survives_many_alphabetically_earlier_prefixes(contoso):
    # "ann aaron…" sorts before "ann a.sole@…"; the exact tier keeps "Ann" in.
    for i in range(12):
        factories.directory_user(contoso, f"Ann Aa{i:02d}", mail=f"aa{i}@contoso.example")
    factories.directory_user(contoso, "Ann", mail="zz.ann@contoso.example")
    results = directory_search(tenant=contoso, query="ann")
    assert results[0].display_name == "Ann" and results[0].rank == RANK_EXACT


def test_prefix_matches_beat_substrings_when_the_pool_overflows(contoso, monkeypatch):
    import contacts.selectors as selectors

    # A pool smaller than the number of substring matches (but, as in
    # production, larger than the 10 results shown).
    monkeypatch.setattr(selectors, "CANDIDATE_POOL", 11)
    for i in range(20):
        factories.directory_user(contoso, f"Aaa Xkira{i:02d}", mail=f"s{i}@contoso.example")  # substring "kira"
    for name in ("Zed Kira", "Yan Kiraly", "Kira Zulu"):
        factories.directory_user(contoso, name, mail=f"{name.split()[0].lower()}@contoso.example")
    results = directory_search(tenant=contoso, query="kira")
    assert names(results)[:3] == ["Kira Zulu", "Yan Kiraly", "Zed Kira"]
    assert [r.rank for r in results[:3]] == [RANK_PREFIX] * 3
    assert {r.rank for r in results[3:]} == {RANK_SUBSTRING}
    assert len(results) == 10


def test_queries_folding_cannot_affect_skip_the_fold_branch(contoso):
    # "xq" has no letter that folding produces (i o l d h t k a e), so only
    # untouched text can match it and the folded branch is left out.
    factories.directory_user(contoso, "Xquisite Søren", mail="xq@contoso.example")
    with CaptureQueriesContext(connection) as ctx:
        assert names(directory_search(tenant=contoso, query="xq")) == ["Xquisite Søren"]
    assert "_special" not in ctx.captured_queries[0]["sql"]
    with CaptureQueriesContext(connection) as ctx:
        assert names(directory_search(tenant=contoso, query="soren")) == ["Xquisite Søren"]
    assert "_special" in ctx.captured_queries[0]["sql"]


def test_postgres_two_letter_queries_fold_only_the_listed_rows(contoso):
    from contacts.selectors import has_fold_letters_short

    factories.directory_user(contoso, "Søren Planø", mail="soren@contoso.example")
    with CaptureQueriesContext(connection) as ctx:
        assert names(directory_search(tenant=contoso, query="so")) == ["Søren Planø"]
    sql = ctx.captured_queries[0]["sql"]
    # Spelled as the partial index of the rows to fold expects (not as the
    # trigram index's predicate, which a 2-letter pattern can't use).
    assert has_fold_letters_short("u.search_text") in sql
    assert has_fold_letters("u.search_text") not in sql
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM environment_directoryuser u WHERE u.tenant_id = %s"
            f" AND {has_fold_letters_short('u.search_text')}",
            [contoso.pk],
        )
        plan = "\n".join(r[0] for r in cursor.fetchall())
    assert "contacts_diruser_search_fold_rows" in plan, plan
