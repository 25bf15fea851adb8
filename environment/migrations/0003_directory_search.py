"""The directory's search key, folded by PostgreSQL: unaccent, pg_trgm and a two-letter index.

``search_text`` becomes a stored generated column computed by
``directory_search_text`` (see ``environment/search.py``), and the search
indexes live with the tables they index. This replaces the folding done in
Python and the hand-written letter folds and index migrations of
``contacts`` 0002-0006 (squashed into ``contacts`` 0002): dropping the old
column drops their indexes with it, on a database that had them.

unaccent's rules already fold the letters Unicode doesn't decompose
(ı -> i, ø -> o, ł -> l, æ -> ae, œ -> oe, þ -> th, đ/ð -> d, ħ -> h, ŧ -> t,
ŀ -> l), so ``directory_fold`` adds nothing to them. Both extensions are
"trusted": a database owner may create them without being a superuser.
"""

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
from django.contrib.postgres.operations import TrigramExtension, UnaccentExtension
from django.db import migrations, models

# IMMUTABLE (what a generated column and an index expression require): the
# unaccent dictionary is named with its schema, so the result can't depend on
# the search_path. The search folds what is typed with the same directory_fold.
FUNCTIONS = r"""
-- Whitespace runs become one space (with string functions: the regex engine
-- costs several times more per row written).
CREATE OR REPLACE FUNCTION directory_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT array_to_string(array_remove(string_to_array(lower(translate(
        public.unaccent('public.unaccent'::regdictionary, $1), E'\t\n\r\f\x0b\u00a0', '      ')), ' '), ''), ' ')
$$;

-- Two spaces between parts: "name  mail  upn". Within a part there is never more
-- than one, so the whole name "q" is exactly search_text = q or the range
-- [q || '  ', q || ' !') of the b-tree, with nothing to test row by row.
CREATE OR REPLACE FUNCTION directory_search_text(VARIADIC parts text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    part text;
    folded text;
    result text := '';
BEGIN
    FOREACH part IN ARRAY parts LOOP
        folded := directory_fold(part);
        IF folded <> '' THEN
            result := CASE WHEN result = '' THEN folded ELSE result || '  ' || folded END;
        END IF;
    END LOOP;
    RETURN result;
END
$$;

-- Every two-character substring: the pairs at odd positions, then at even ones.
-- (Pairs with a space are kept: no query looks for them, and dropping them costs
-- more per row than the few extra index keys. GIN removes duplicates itself.)
CREATE OR REPLACE FUNCTION directory_bigrams(text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT array_remove(
        string_to_array(regexp_replace($1, '(..)', E'\\1\x1f', 'g'), E'\x1f')
        || string_to_array(regexp_replace(substr($1, 2), '(..)', E'\\1\x1f', 'g'), E'\x1f'),
        '')
$$;
"""
DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS directory_bigrams(text);
DROP FUNCTION IF EXISTS directory_search_text(VARIADIC text[]);
DROP FUNCTION IF EXISTS directory_fold(text);
"""


class Migration(migrations.Migration):

    dependencies = [
        ('environment', '0002_initial'),
        ('tenancy', '0002_tenant_provider_name_index'),
    ]

    operations = [
        TrigramExtension(),
        UnaccentExtension(),
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
        migrations.RemoveField(
            model_name='directorygroup',
            name='search_text',
        ),
        migrations.AddField(
            model_name='directorygroup',
            name='search_text',
            field=models.GeneratedField(db_persist=True, expression=models.Func(models.F('display_name'), models.F('mail'), function='directory_search_text', output_field=models.TextField()), output_field=models.TextField(db_collation='C')),
        ),
        migrations.RemoveField(
            model_name='directoryuser',
            name='search_text',
        ),
        migrations.AddField(
            model_name='directoryuser',
            name='search_text',
            field=models.GeneratedField(db_persist=True, expression=models.Func(models.F('display_name'), models.F('mail'), models.F('user_principal_name'), function='directory_search_text', output_field=models.TextField()), output_field=models.TextField(db_collation='C')),
        ),
        migrations.AddIndex(
            model_name='directorygroup',
            index=models.Index(fields=['tenant', 'search_text'], include=('id',), name='dir_group_search'),
        ),
        migrations.AddIndex(
            model_name='directorygroup',
            index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass(models.F('search_text'), name='gin_trgm_ops'), gin_pending_list_limit=64, name='dir_group_search_trgm'),
        ),
        migrations.AddIndex(
            model_name='directorygroup',
            index=django.contrib.postgres.indexes.GinIndex(models.Func(models.F('search_text'), function='directory_bigrams', output_field=django.contrib.postgres.fields.ArrayField(base_field=models.TextField(), size=None)), gin_pending_list_limit=64, name='dir_group_search_bigram'),
        ),
        migrations.AddIndex(
            model_name='directoryuser',
            index=models.Index(fields=['tenant', 'search_text'], include=('id',), name='dir_user_search'),
        ),
        migrations.AddIndex(
            model_name='directoryuser',
            index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass(models.F('search_text'), name='gin_trgm_ops'), gin_pending_list_limit=64, name='dir_user_search_trgm'),
        ),
        migrations.AddIndex(
            model_name='directoryuser',
            index=django.contrib.postgres.indexes.GinIndex(models.Func(models.F('search_text'), function='directory_bigrams', output_field=django.contrib.postgres.fields.ArrayField(base_field=models.TextField(), size=None)), gin_pending_list_limit=64, name='dir_user_search_bigram'),
        ),
    ]
