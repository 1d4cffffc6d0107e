"""docs/properties.md and the tests agree: every test whose docstring starts with `Property N:` is a row of the
page (N and the test's path::name), and every row of the page is such a test. Read from the files at test time."""

from __future__ import annotations

from tests.helpers.property_tests import indexed, property_tests
from tests.helpers.servers import REPO_ROOT


def test_every_property_test_is_listed_and_every_row_is_a_property_test() -> None:
    in_tests = set(property_tests(REPO_ROOT / "tests"))
    in_doc = indexed((REPO_ROOT / "docs" / "properties.md").read_text(encoding="utf-8"))
    assert len(in_tests) >= 48, sorted(in_tests)  # the scan found the suite's property tests
    missing = sorted(in_tests - in_doc)
    stale = sorted(in_doc - in_tests)
    assert not missing, f"Property tests missing from docs/properties.md: {missing}"
    assert not stale, f"docs/properties.md rows that are no `Property N:` test: {stale}"


def test_every_numbered_property_has_a_place() -> None:
    """Properties 1-48 each have a row (20 is covered by 40's test and says so in a note)."""
    text = (REPO_ROOT / "docs" / "properties.md").read_text(encoding="utf-8")
    listed = {number for number, _ in indexed(text)}
    assert set(range(1, 49)) - listed == {20}
    assert "Property 20 (" in text
