"""What a hostile org file cannot do (SPEC §13, issue 14 item 5): be large, expand (an alias
bomb), produce a huge error message, or make the work per entry grow; and whatever structure
arrives, `load_document` loads it or raises OrgFileError, writing nothing."""

from __future__ import annotations

import copy
from datetime import UTC, timedelta, timezone

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from escalations.orgfile import OrgFileError, load_document, load_org, parse_document
from escalations.orgfile import load as orgfile_load
from escalations.orgfile import parse as orgfile_parse
from escalations.orgfile.schema import FIELDS, MAX_ERRORS, MAX_MESSAGE, TOP_LEVEL
from teams.hours import WEEKDAYS
from tests.test_orgfile import MINIMAL
from tests.test_orgfile_validation import org_state


def test_the_default_size_limit_is_5_mb():
    assert settings.ORG_FILE_MAX_BYTES == 5 * 1024 * 1024


@pytest.mark.django_db
def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    def no_parsing(*args, **kwargs):
        raise AssertionError("the file was parsed")

    monkeypatch.setattr(orgfile_parse, "_parse_yaml", no_parsing)
    monkeypatch.setattr(orgfile_parse, "_decode", no_parsing)
    path = tmp_path / "org.yaml"
    with path.open("wb") as handle:
        handle.truncate(45 * 1024 * 1024)  # 45 MB, sparse: nothing to read before refusing
    with pytest.raises(OrgFileError) as err:
        load_org(path)
    assert (
        "the file is 47,185,920 bytes; an org file may have at most 5,242,880 bytes, about "
        "5.0 MB (setting ORG_FILE_MAX_BYTES)"
    ) in str(err.value)


@pytest.mark.django_db
@override_settings(ORG_FILE_MAX_BYTES=2048)
def test_the_size_limit_is_a_setting_and_holds_for_text_given_directly(tmp_path):
    path = tmp_path / "org.yaml"
    path.write_text("sources:\n" + "  - {code: web, name: Web}\n" * 100)  # 2,610 bytes
    with pytest.raises(OrgFileError, match="at most 2,048 bytes"):
        load_org(path)
    with pytest.raises(OrgFileError, match="the file is 2,055 bytes"):
        parse_document('{"sources": "' + "é" * 1020 + '"}', fmt="json")  # 1,035 characters
    with pytest.raises(OrgFileError, match="the file is at least 3,000,000 bytes"):
        parse_document("x" * 3_000_000, fmt="yaml")


# Six levels of nine: 386 bytes that expand to 531,441 strings (3.7 MB once written out).
ALIAS_BOMB = """\
sla_policies:
  - &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
  - &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  - &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  - &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  - &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  - &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  - {state: NEW, window: *f}
"""


@pytest.mark.django_db
def test_a_yaml_alias_bomb_is_refused_at_its_first_alias_with_a_short_message(tmp_path):
    path = tmp_path / "org.yaml"
    path.write_text(ALIAS_BOMB)
    assert path.stat().st_size < 400
    with pytest.raises(OrgFileError) as err:
        load_org(path)
    message = str(err.value)
    assert "anchors and aliases (&name, *name) are not allowed in an org file" in message
    assert "(line 2, column 5)" in message  # the anchor the first alias points to
    assert len(message) < 600


@pytest.mark.django_db
def test_a_single_alias_is_refused_too(tmp_path):
    path = tmp_path / "org.yaml"
    path.write_text(
        "markets:\n  - {code: IN, hours: &week {mon: ['09:00-18:00']}}\n"
        "  - {code: US, hours: *week}\n"
    )
    with pytest.raises(OrgFileError, match="anchors and aliases"):
        load_org(path)


@pytest.mark.django_db
def test_merge_keys_are_refused(tmp_path):
    path = tmp_path / "org.yaml"
    path.write_text("sources:\n  - {<<: {name: Web}, code: web}\n")
    with pytest.raises(OrgFileError, match=r"merge keys \(<<\) are not allowed"):
        load_org(path)


@pytest.mark.django_db
def test_error_output_lists_at_most_50_errors_and_counts_the_rest(db):
    doc = {"sources": [{"code": f"bad code {i}"} for i in range(500)]}
    with pytest.raises(OrgFileError) as err:
        load_document(doc)
    message = str(err.value)
    assert err.value.total == 500
    assert message.count("is not a valid source code") == MAX_ERRORS
    assert message.endswith("  - ... and 450 more")
    assert "500 error(s), nothing was changed" in message
    assert len(message) < 200 + (MAX_ERRORS + 1) * (MAX_MESSAGE + 5)


@pytest.mark.django_db
def test_a_huge_value_is_not_echoed_in_full(db):
    for doc in (
        {"sla_policies": [{"state": "NEW", "window": "9" * 1_000_000}]},
        {"sla_policies": [{"state": ["NEW"] * 1_000_000, "window": "1h"}]},
        {"sources": [{"code": "web", "name": "x" * 1_000_000 + "\x00"}]},
        {"markets": [{"code": "IN", "hours": {"mon": [["09:00"] * 1_000_000]}}]},
        {"x" * 1_000_000: 1},
    ):
        with pytest.raises(OrgFileError) as err:
            load_document(doc, source="org.yaml")
        assert len(str(err.value)) < 500


def _org_with(n: int) -> dict:
    doc = copy.deepcopy(MINIMAL)
    doc["sources"] += [{"code": f"source-{i}", "name": f"Source {i}"} for i in range(n)]
    doc["reps"] += [
        {
            "email": f"rep{i}@example.com",
            "name": f"Rep {i}",
            "team": "in-inside",
            "pto": [{"start": "2027-01-04T00:00:00+05:30", "end": "2027-01-05T00:00:00+05:30"}],
        }
        for i in range(n)
    ]
    return doc


def _queries(doc) -> int:
    with CaptureQueriesContext(connection) as queries:
        load_document(doc)
    return len(queries)


@pytest.mark.django_db
def test_the_work_per_entry_is_fixed_and_an_unchanged_entry_costs_no_query(db):
    load_document(_org_with(0))
    first_ten = _queries(_org_with(10))  # creates 10 sources and 10 reps with PTO
    next_ten = _queries(_org_with(20))  # creates 10 more; the first 10 are unchanged
    assert next_ten == first_ten
    assert _queries(_org_with(10)) == _queries(_org_with(20)) == _queries(_org_with(0))


# --- whatever arrives: loaded, or OrgFileError with nothing written -----------------------------

KNOWN_NAMES = sorted(set(TOP_LEVEL) | set().union(*FIELDS.values()) | set(WEEKDAYS))
OFFSETS = st.sampled_from([None, UTC, timezone(timedelta(hours=5, minutes=30))])
any_text = st.text(st.characters(exclude_categories=()), max_size=12)  # surrogates included
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()
    | any_text
    | st.sampled_from(["IN", "in-inside", "paid_social", "NEW", "1h", "09:00-18:00", "rep"])
    | st.dates()
    | st.datetimes(timezones=OFFSETS)
)
keys = st.sampled_from(KNOWN_NAMES) | any_text | st.integers() | st.booleans() | st.none()
structures = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=30,
)
documents = st.dictionaries(st.sampled_from(TOP_LEVEL) | keys, structures, max_size=6) | structures


@st.composite
def mutated_minimal(draw):
    """The minimal org with one value somewhere replaced, removed or added."""
    doc = copy.deepcopy(MINIMAL)
    parent, key = None, None
    node = doc
    while isinstance(node, (dict, list)) and node and draw(st.integers(0, 3)):
        parent = node
        key = draw(
            st.sampled_from(sorted(node, key=str) if isinstance(node, dict) else range(len(node)))
        )
        node = node[key]
    if parent is None:
        doc[draw(keys)] = draw(structures)
    elif draw(st.booleans()) or isinstance(parent, list):
        parent[key] = draw(structures)
    else:
        del parent[key]
    return doc


PROPERTY = hypothesis_settings(
    max_examples=150,
    deadline=None,
    # The org below is loaded once per test, not per example; each example rolls back to it.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def minimal_org(db):
    load_document(copy.deepcopy(MINIMAL))


def _loads_or_refuses_cleanly(doc, dry_run: bool) -> None:
    with transaction.atomic():
        before = org_state()
        try:
            report = load_document(doc, source="fuzz.yaml", dry_run=dry_run)
        except OrgFileError as exc:
            event("refused")
            assert org_state() == before
            assert len(str(exc)) < 200 + (MAX_ERRORS + 1) * (MAX_MESSAGE + 5)
        else:
            event("loaded")
            assert report.dry_run == dry_run
            if dry_run:
                assert org_state() == before
        transaction.set_rollback(True)


@PROPERTY
@given(doc=documents, dry_run=st.booleans())
def test_any_structure_loads_or_is_refused_with_nothing_written(minimal_org, doc, dry_run):
    _loads_or_refuses_cleanly(doc, dry_run)


@PROPERTY
@given(doc=mutated_minimal(), dry_run=st.booleans())
def test_any_change_to_a_valid_org_loads_or_is_refused_with_nothing_written(
    minimal_org, doc, dry_run
):
    _loads_or_refuses_cleanly(doc, dry_run)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    raw=st.binary(max_size=200)
    | any_text.map(lambda text: text.encode("utf-8", "surrogatepass"))
    | st.text(max_size=200)
)
def test_any_bytes_parse_to_a_mapping_or_are_refused(raw):
    for fmt in ("yaml", "json"):
        try:
            data = parse_document(raw, fmt=fmt)
        except OrgFileError:
            continue
        assert isinstance(data, dict)


@pytest.mark.django_db
def test_a_row_saved_by_someone_else_while_the_file_loads_is_a_clean_error(monkeypatch):
    load_document(copy.deepcopy(MINIMAL))
    before = org_state()
    # As if another writer had saved the market, sources, ... after the loader looked them up.
    monkeypatch.setattr(orgfile_load, "_by_key", lambda *args, **kwargs: {})
    with pytest.raises(OrgFileError, match="the org changed while the file was loading"):
        load_document(copy.deepcopy(MINIMAL))
    assert org_state() == before
