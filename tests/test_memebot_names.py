"""One template lookup (memebot/names.py) for the model's template table and the engine's
catalog: the same name finds the same template in both, a unique prefix included."""

from __future__ import annotations

import pytest

from engine.catalog import Catalog
from memebot.artifact.templates import TemplateEntry, TemplateTable
from memebot.errors import TemplateNotFound, UsageError
from memebot.names import NameIndex, lookup_key

CATALOG = Catalog.load()
# The catalog's templates as a model's template table would list them.
TABLE = TemplateTable(
    TemplateEntry(t.slug, t.name, t.imgflip_id, t.aliases, t.box_count, i + 1, 10)
    for i, t in enumerate(CATALOG.templates)
)


@pytest.mark.parametrize(
    ("query", "slug"),
    [
        ("drake-hotline-bling", "drake-hotline-bling"),  # slug
        ("Drake Hotline Bling", "drake-hotline-bling"),  # name, case and spaces ignored
        ("drake", "drake-hotline-bling"),  # a unique prefix
        ("DISTRACTED bf", "distracted-boyfriend"),  # an alias
        ("distracted", "distracted-boyfriend"),
        ("181913649", "drake-hotline-bling"),  # Imgflip id
        ("two butt", "two-buttons"),
        ("", None),
        ("the", None),  # a prefix of several: ambiguous
        ("zzzz-no-such-meme", None),
    ],
)
def test_table_and_catalog_answer_a_name_the_same_way(query: str, slug: str | None) -> None:
    from_catalog, from_table = CATALOG.get(query), TABLE.index.get(query)
    assert (from_catalog and from_catalog.slug) == (from_table and from_table.slug) == slug


def test_unknown_names_raise_template_not_found_with_the_closest() -> None:
    for lookup in (CATALOG.lookup, TABLE.lookup):
        with pytest.raises(TemplateNotFound) as e:
            lookup("two buttonz")
        assert isinstance(e.value, UsageError)  # the CLI prints it as one line
        assert e.value.query == "two buttonz" and e.value.closest[0] == "two-buttons"
        assert "unknown template 'two buttonz'; closest: two-buttons" in str(e.value)


def test_name_index_prefers_exact_keys_and_labels_each_item_once() -> None:
    index = NameIndex([("a", ["Foo", "foo bar"]), ("b", ["foo-barn"])], label=str.upper)
    assert index.get("FOO") == "a"  # exact beats being a prefix of three keys
    assert index.get("foo b") is None  # prefix of "foobar" (a) and "foobarn" (b)
    assert index.get("foobarn") == "b" and index.get("foo-bar-n") == "b"
    assert index.closest("fo", n=5) == ["A", "B"]
    assert lookup_key("Y U No!") == lookup_key("y-u-no") == "yuno"
