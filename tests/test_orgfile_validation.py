"""The org file checks every value before use (SPEC §13, issue 14 item 5): a wrong type, a control
character, a non-UTF-8 file, a duplicate key or entry, a look-alike code, a non-ASCII window or an
insane email is an error naming the entry and the field, never a traceback, and nothing is
written. The checks sit in `load_document`, where the file, `--dry-run` and the API all pass."""

from __future__ import annotations

import copy
import json
from datetime import datetime

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from escalations.models import SlaPolicy, SlaThresholds
from escalations.orgfile import (
    OrgFileError,
    dump_document,
    load_document,
    load_org,
    parse_document,
)
from escalations.windows import WindowError, parse_window
from leadops.models import Source
from teams import hours as hours_format
from teams.models import Market, Rep, Team, TimeOff
from tests.test_orgfile import MINIMAL


def org_state() -> dict:
    """Everything a load could write, history and audit included."""
    return {
        "markets": list(Market.objects.values().order_by("pk")),
        "teams": list(Team.objects.values().order_by("pk")),
        "reps": list(Rep.objects.values().order_by("pk")),
        "pto": list(TimeOff.objects.values().order_by("pk")),
        "sources": list(Source.objects.values().order_by("pk")),
        "policies": list(SlaPolicy.objects.values().order_by("pk")),
        "thresholds": list(SlaThresholds.objects.values()),
        "history": [
            model.history.count() for model in (Market, Team, Rep, TimeOff, Source, SlaPolicy)
        ],
        "audit": AuditEvent.objects.count(),
    }


def changed(mutate) -> dict:
    doc = copy.deepcopy(MINIMAL)
    mutate(doc)
    return doc


def refused(doc, **kwargs) -> str:
    """Load `doc` as the API will (already parsed); it must be refused with nothing written."""
    before = org_state()
    with pytest.raises(OrgFileError) as err:
        load_document(doc, source="org.yaml", **kwargs)
    assert org_state() == before
    return str(err.value)


@pytest.fixture
def loaded(db):
    load_document(copy.deepcopy(MINIMAL), source="org.yaml")


WRONG_TYPES = {
    "a list where a market code belongs": (
        lambda d: d["teams"][0].update(market=["IN"]),
        "teams[0] (in-inside), field 'market': must be text, not a list",
    ),
    "a mapping where a team slug belongs": (
        lambda d: d["reps"][0].update(team={"slug": "in-inside"}),
        "reps[0] (asha@example.com), field 'team': must be text, not a mapping",
    ),
    "a list where a policy's source belongs": (
        lambda d: d["sla_policies"][1].update(source=["paid_social"]),
        "sla_policies[1] (NEW), field 'source': must be text, not a list",
    ),
    "a list as the market code": (
        lambda d: d["markets"][0].update(code=["IN"]),
        "markets[0] (['IN']), field 'code': must be text, not a list",
    ),
    "a list as the state": (
        lambda d: d["sla_policies"][0].update(state=["NEW"]),
        "sla_policies[0] (['NEW']), field 'state': ['NEW'] is not one of NEW",
    ),
    "an integer day key beside a text one": (
        lambda d: d["markets"][0]["hours"].update({1: ["09:00-10:00"], "xx": []}),
        "markets[0] (IN), field 'hours': unknown day(s) 'xx', 1",
    ),
    "a list as a name": (
        lambda d: d["markets"][0].update(name=["India"]),
        "markets[0] (IN), field 'name': must be text, not a list",
    ),
    "a number as a name": (
        lambda d: d["sources"][0].update(name=5),
        "sources[0] (paid_social), field 'name': must be text, not a number (5) (put it in quotes)",
    ),
    "false as a code (YAML's `NO`)": (
        lambda d: d["sources"][0].update(code=False),
        "sources[0] (False), field 'code': must be text, not true/false",
    ),
    "true as a capacity": (
        lambda d: d["reps"][0].update(capacity=True),
        "reps[0] (asha@example.com), field 'capacity': True must be a whole number",
    ),
    "a fraction as a capacity": (
        lambda d: d["reps"][0].update(capacity=2.5),
        "reps[0] (asha@example.com), field 'capacity': 2.5 must be a whole number",
    ),
    "a capacity too big for the database": (
        lambda d: d["reps"][0].update(capacity=10**30),
        "reps[0] (asha@example.com), field 'capacity'",
    ),
    "text as a flag": (
        lambda d: d["reps"][0].update(active="yes"),
        "reps[0] (asha@example.com), field 'active': 'yes' must be true or false",
    ),
    "a number as a window": (
        lambda d: d["sla_policies"][0].update(window=60),
        "sla_policies[0] (NEW), field 'window': 60 is not a window",
    ),
    "a window of 5,000 digits": (
        lambda d: d["sla_policies"][0].update(window="9" * 5000 + "h"),
        "sla_policies[0] (NEW), field 'window'",
    ),
    "text as a threshold": (
        lambda d: d["thresholds"].update(warn="80"),
        "thresholds, field 'warn': '80' must be a whole number",
    ),
    "a list as the thresholds": (
        lambda d: d.update(thresholds=[80]),
        "thresholds: must be a mapping, not a list",
    ),
    "a list as the holidays": (
        lambda d: d["markets"][0].update(holidays=["IN"]),
        "markets[0] (IN), field 'holidays': must be a mapping, not a list",
    ),
    "a list as the holiday country": (
        lambda d: d["markets"][0]["holidays"].update(country=["IN"]),
        "markets[0] (IN), field 'holidays.country': must be text, not a list",
    ),
    "a list as the time zone": (
        lambda d: d["markets"][0].update(timezone=["Asia/Kolkata"]),
        "markets[0] (IN), field 'timezone': must be text, not a list",
    ),
    "a closed date that does not exist": (
        lambda d: d["markets"][0]["holidays"].update(extra_closed=["2026-02-30"]),
        "markets[0] (IN), field 'holidays.extra_closed': '2026-02-30' is not a date",
    ),
    "a list as an open date": (
        lambda d: d["markets"][0]["holidays"].update(extra_open=[{"date": ["2026-12-27"]}]),
        "markets[0] (IN), field 'holidays.extra_open'",
    ),
    "a PTO start that does not exist": (
        lambda d: d["reps"][0]["pto"][0].update(start="2026-02-30T00:00:00+05:30"),
        "reps[0] (asha@example.com) pto[0], field 'start': '2026-02-30T00:00:00+05:30' is not",
    ),
    "a list as a PTO start": (
        lambda d: d["reps"][0]["pto"][0].update(start=[1]),
        "reps[0] (asha@example.com) pto[0], field 'start': [1] is not a date-time",
    ),
    "a mapping as the PTO": (
        lambda d: d["reps"][0].update(pto={"start": "2026-12-01T00:00:00+05:30"}),
        "reps[0] (asha@example.com), field 'pto': must be a list",
    ),
    "a number as a PTO reason": (
        lambda d: d["reps"][0]["pto"][0].update(reason=7),
        "reps[0] (asha@example.com) pto[0], field 'reason': must be text",
    ),
    "a number key in an entry": (
        lambda d: d["sources"][0].update({1: "x", "zz": 2}),
        "sources[0] (paid_social), field 1: unknown field",
    ),
    "a number key at the top": (
        lambda d: d.update({1: "x", "zz": 2}),
        "unknown top-level key 1",
    ),
    "a mapping as a section": (
        lambda d: d.update(markets={"IN": d["markets"][0]}),
        "markets: must be a list of mappings, not a mapping",
    ),
    "text as an entry": (
        lambda d: d["teams"].append("in-inside"),
        "teams[1] (?): must be a mapping, not str",
    ),
    "a mapping as a rep's hours day": (
        lambda d: d["reps"][0].update(hours={"mon": {"from": "09:00"}}),
        "reps[0] (asha@example.com), field 'hours': mon:",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_a_value_of_the_wrong_type_is_an_error_naming_the_entry_and_field(loaded, case):
    mutate, expected = WRONG_TYPES[case]
    message = refused(changed(mutate))
    assert expected in message
    assert "nothing was changed" in message


@pytest.mark.django_db
@pytest.mark.parametrize("case", ["a list where a market code belongs", "a number key in an entry"])
def test_a_wrong_type_in_a_yaml_file_is_a_command_error_not_a_traceback(tmp_path, case):
    mutate, expected = WRONG_TYPES[case]
    path = tmp_path / "org.yaml"
    path.write_text(yaml.safe_dump(changed(mutate), sort_keys=False))
    for dry_run in (False, True):
        with pytest.raises(CommandError) as err:
            call_command("load_org", str(path), dry_run=dry_run)
        assert expected in str(err.value)
    assert not Market.objects.exists()


@pytest.mark.django_db
def test_an_integer_day_key_in_a_yaml_file_names_the_day(tmp_path):
    path = tmp_path / "org.yaml"
    text = yaml.safe_dump(MINIMAL, sort_keys=False).replace("mon:", "1:", 1)
    path.write_text(text)
    with pytest.raises(OrgFileError, match=r"markets\[0\] \(IN\), field 'hours': unknown day"):
        load_org(path)


CONTROL_CHARACTERS = {
    "NUL in a market name": (
        lambda d: d["markets"][0].update(name="In\x00dia"),
        "markets[0] (IN), field 'name': contains a control character (U+0000) at position 2",
    ),
    "NUL in a market code": (
        lambda d: d["markets"][0].update(code="IN\x00"),
        "markets[0] ('IN\\x00'), field 'code': contains a control character (U+0000)",
    ),
    "escape sequence in a rep name": (
        lambda d: d["reps"][0].update(name="Asha\x1b[2J"),
        "reps[0] (asha@example.com), field 'name': contains a control character (U+001B)",
    ),
    "newline in a team name": (
        lambda d: d["teams"][0].update(name="India\ninside"),
        "teams[0] (in-inside), field 'name': contains a control character (U+000A)",
    ),
    "DEL in a source name": (
        lambda d: d["sources"][0].update(name="Paid\x7f"),
        "sources[0] (paid_social), field 'name': contains a control character (U+007F)",
    ),
    "C1 control in a Slack id": (
        lambda d: d["reps"][0].update(slack_user_id="U01\x85"),
        "field 'slack_user_id': contains a control character (U+0085)",
    ),
    "lone surrogate in a PTO reason": (
        lambda d: d["reps"][0]["pto"][0].update(reason="Diwali\ud800"),
        "pto[0], field 'reason': contains a control character (U+D800)",
    ),
    "right-to-left override in a rep name": (
        lambda d: d["reps"][1].update(name="Vikram\u202eharS"),
        "reps[1] (vik@example.com), field 'name': contains a control character (U+202E)",
    ),
    "NUL in a time zone": (
        lambda d: d["markets"][0].update(timezone="Asia/Kolkata\x00"),
        "markets[0] (IN), field 'timezone': contains a control character (U+0000)",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(CONTROL_CHARACTERS))
def test_a_control_character_in_text_is_refused_before_the_database(case):
    mutate, expected = CONTROL_CHARACTERS[case]
    message = refused(changed(mutate))
    assert expected in message


@pytest.mark.django_db
def test_a_nul_escape_in_a_yaml_file_is_refused(tmp_path):
    path = tmp_path / "org.yaml"
    path.write_text('sources: [{code: web, name: "Web\\0"}]\n')
    with pytest.raises(OrgFileError, match=r"sources\[0\] \(web\), field 'name': contains a con"):
        load_org(path)
    assert not Source.objects.exists()


@pytest.mark.django_db
def test_names_in_any_script_are_welcome():
    doc = changed(lambda d: d["reps"][0].update(name="आशा राव\u200d"))  # ZWJ: part of Devanagari
    load_document(doc)
    assert Rep.objects.get(email="asha@example.com").name == "आशा राव\u200d"


@pytest.mark.django_db
def test_a_file_that_is_not_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "org.yaml"
    path.write_bytes("sources:\n  - {code: web, name: Müller}\n".encode("latin-1"))
    with pytest.raises(OrgFileError) as err:
        load_org(path)
    assert "not UTF-8 text: byte 0xfc at line 2, column 24" in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.django_db
def test_a_utf16_file_is_a_clear_error_and_a_utf8_bom_is_fine(tmp_path):
    path = tmp_path / "org.yaml"
    path.write_bytes("sources: [{code: web, name: Web}]\n".encode("utf-16"))
    with pytest.raises(OrgFileError, match="not UTF-8 text: byte 0xff at line 1, column 1"):
        load_org(path)
    path.write_bytes("\ufeffsources: [{code: web, name: Wéb}]\n".encode())
    load_org(path)
    assert Source.objects.get().name == "Wéb"


@pytest.mark.django_db
def test_a_nul_in_the_path_is_a_clear_error():
    with pytest.raises(OrgFileError, match="cannot read the file"):
        load_org("org\x00.yaml")


DUPLICATE_KEYS_YAML = """\
sources:
  - code: web
    name: Web
    code: paid
"""


@pytest.mark.django_db
def test_a_duplicate_key_in_a_yaml_mapping_is_refused_with_its_line(tmp_path):
    path = tmp_path / "org.yaml"
    path.write_text(DUPLICATE_KEYS_YAML)
    with pytest.raises(OrgFileError) as err:
        load_org(path)
    assert "duplicate key 'code' (first at line 2) (line 4, column 5)" in str(err.value)
    assert not Source.objects.exists()


@pytest.mark.django_db
def test_a_duplicate_top_level_section_in_yaml_is_refused(tmp_path):
    path = tmp_path / "org.yaml"
    path.write_text("sources: [{code: web}]\nteams: []\nsources: [{code: paid}]\n")
    with pytest.raises(OrgFileError, match=r"duplicate key 'sources' \(first at line 1\)"):
        load_org(path)


@pytest.mark.django_db
def test_a_duplicate_key_in_a_json_object_is_refused_with_the_line_of_the_object(tmp_path):
    path = tmp_path / "org.json"
    path.write_text(
        '{\n "sources": [\n  {"code": "web",\n   "name": "Web", "code": "paid"}\n ]\n}\n'
    )
    with pytest.raises(OrgFileError) as err:
        load_org(path)
    assert "not valid JSON: duplicate key 'code' in the mapping at line 3" in str(err.value)
    assert not Source.objects.exists()


DUPLICATE_ENTRIES = {
    "market": (
        lambda d: d["markets"].append(dict(d["markets"][0], name="India again")),
        "markets[1] (IN): the same code as markets[0] (IN)",
    ),
    "source": (
        lambda d: d["sources"].append({"code": "paid_social", "name": "Paid"}),
        "sources[2] (paid_social): the same code as sources[0] (paid_social)",
    ),
    "team": (
        lambda d: d["teams"].append(dict(d["teams"][0])),
        "teams[1] (in-inside): the same slug as teams[0] (in-inside)",
    ),
    "rep, in another case": (
        lambda d: d["reps"].append(dict(d["reps"][0], email="Asha@Example.COM", pto=[])),
        "reps[2] (Asha@Example.COM): the same email as reps[0] (asha@example.com)",
    ),
    "PTO range": (
        lambda d: d["reps"][0]["pto"].append(dict(d["reps"][0]["pto"][0], reason="again")),
        "reps[0] (asha@example.com) pto[1]: the same range as pto[0]",
    ),
    "PTO range written in another offset": (
        lambda d: d["reps"][0]["pto"].append(
            {"start": "2026-11-30T18:30:00+00:00", "end": "2026-12-02T18:30:00Z"}
        ),
        "reps[0] (asha@example.com) pto[1]: the same range as pto[0]",
    ),
    "policy": (
        lambda d: d["sla_policies"].append(
            {"state": "NEW", "market": "IN", "source": "inbound_web", "window": "3h"}
        ),
        "sla_policies[4] (NEW): the same (state, market, source) as sla_policies[2] (NEW)",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(DUPLICATE_ENTRIES))
def test_a_duplicate_entry_is_refused_naming_both(loaded, case):
    mutate, expected = DUPLICATE_ENTRIES[case]
    assert expected in refused(changed(mutate))


LOOK_ALIKES = {
    "IN and a zero-width space": ("markets", "code", "IN\u200b", "'IN\\u200b' is not a valid"),
    "Cyrillic I": ("markets", "code", "\u0406N", "is not a valid market code"),
    "fullwidth IN": ("markets", "code", "ＩＮ", "'ＩＮ' is not a valid market code"),
    "a space in a slug": ("teams", "slug", "in inside", "'in inside' is not a valid team slug"),
    "a dot in a source code": ("sources", "code", "paid.social", "is not a valid source code"),
    "non-breaking space in a source code": ("sources", "code", "paid\xa0social", "not a valid"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(LOOK_ALIKES))
def test_a_code_outside_ascii_letters_digits_underscore_and_dash_is_refused(loaded, case):
    section, fieldname, value, expected = LOOK_ALIKES[case]
    message = refused(changed(lambda d: d[section][0].update({fieldname: value})))
    assert f"field '{fieldname}': " in message
    assert expected in message


@pytest.mark.django_db
def test_codes_may_be_lower_case():
    doc = changed(lambda d: d["markets"][0].update(code="in"))
    doc["teams"][0]["market"] = "in"
    doc["sla_policies"][2]["market"] = "in"
    load_document(doc)
    assert Market.objects.get().code == "in"


@pytest.mark.parametrize("text", ["９h", "1０m", "2\u3000h", "٣bd", "4h\x00"])
def test_a_window_takes_ascii_digits_only(text):
    with pytest.raises(WindowError, match="is not a window"):
        parse_window(text)


@pytest.mark.django_db
def test_the_admin_refuses_a_fullwidth_window_too(org):
    policy = SlaPolicy(state="NEW", market=org.de, window="９h")
    with pytest.raises(ValidationError) as err:
        policy.full_clean()
    assert "window" in err.value.message_dict


@pytest.mark.django_db
def test_a_fullwidth_window_in_the_org_file_is_refused(loaded):
    message = refused(changed(lambda d: d["sla_policies"][0].update(window="９h")))
    assert "sla_policies[0] (NEW), field 'window': '９h' is not a window" in message


@pytest.mark.parametrize("interval", ["０９:００-１８:００", "٠٩:00-18:00", "09:00-18:0０"])
def test_opening_hours_take_ascii_digits_only(interval):
    with pytest.raises(hours_format.HoursError, match="is not an interval"):
        hours_format.parse_week({"mon": [interval]})


def test_a_date_time_is_not_a_closed_date():
    with pytest.raises(hours_format.HoursError, match="is not a date"):
        hours_format.parse_closed_dates([datetime(2026, 12, 31, 10, 0)])


INSANE_EMAILS = [
    "asha",
    "asha@",
    "@example.com",
    "asha@localhost",
    "asha rao@example.com",
    "asha@exаmple.com",  # Cyrillic а
    "aſha@example.com",  # long s, which case-folds to s
    "asha@@example.com",
    "asha@example..com",
    ".asha@example.com",
    "asha@-example.com",
]


@pytest.mark.django_db
@pytest.mark.parametrize("email", INSANE_EMAILS)
def test_an_insane_email_is_refused(loaded, email):
    message = refused(changed(lambda d: d["reps"][0].update(email=email)))
    assert "field 'email': " in message
    assert "is not an email address" in message


@pytest.mark.django_db
def test_emails_are_stored_lower_case(db):
    doc = changed(lambda d: d["reps"][0].update(email="Asha.Rao+leads@Example.co.uk"))
    load_document(doc)
    assert Rep.objects.filter(email="asha.rao+leads@example.co.uk").exists()


@pytest.mark.django_db
def test_yaml_values_the_yaml_library_cannot_build_are_errors_with_a_line(tmp_path):
    path = tmp_path / "org.yaml"
    for text, expected in (
        ("markets:\n  - code: IN\n    holidays: {extra_closed: [2026-02-30]}\n", "line 3"),
        ("thresholds: {warn: !!int eighty}\n", "line 1"),
        ("thresholds: {warn: " + "1" * 5000 + "}\n", "line 1"),
        ("sources: !!python/object:os.system [ls]\n", "line 1"),
    ):
        path.write_text(text)
        with pytest.raises(OrgFileError) as err:
            load_org(path)
        assert "not valid YAML" in str(err.value) and expected in str(err.value)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["org.yaml", "org.json"])
def test_a_deeply_nested_document_is_an_error_not_a_recursion_crash(tmp_path, name):
    path = tmp_path / name
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(OrgFileError, match="not valid|nested too deeply"):
        load_org(path)


@pytest.mark.django_db
def test_a_document_that_is_not_a_mapping_is_refused():
    for data in ([], "markets", 5, [["markets"]]):
        with pytest.raises(OrgFileError, match="the document: must be a mapping"):
            load_document(data)


def test_export_never_writes_an_alias():
    """The loader refuses anchors and aliases, so export must write shared values out."""
    hours = ["09:00-18:00"]
    text = dump_document({"markets": [{"hours": {"mon": hours, "tue": hours}}]}, "yaml")
    assert "&" not in text and "*" not in text
    assert parse_document(text, fmt="yaml") == {
        "markets": [{"hours": {"mon": ["09:00-18:00"], "tue": ["09:00-18:00"]}}]
    }


@pytest.mark.django_db
def test_json_file_with_valid_values_still_loads(tmp_path):
    path = tmp_path / "org.json"
    path.write_text(json.dumps(MINIMAL))
    report = load_org(path)
    assert report.created["reps"] == 2


def test_checks_and_references_are_reported_together_without_echoing_a_refused_entry(db):
    def mutate(doc):
        doc["markets"][0]["timezone"] = "Mars/Olympus"  # the IN market itself is wrong...
        doc["sla_policies"][0]["window"] = "2 weeks"
        doc["sla_policies"].append({"state": "CONTACTED", "market": "XX", "window": "1h"})

    message = refused(changed(mutate))

    assert "Mars/Olympus" in message
    assert "'2 weeks' is not a window" in message
    assert "no market 'XX' in the file or the database" in message
    # ...and the team and policies that name IN are not reported again as "no market 'IN'".
    assert "no market 'IN'" not in message
