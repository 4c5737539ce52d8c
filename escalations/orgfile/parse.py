"""Reading the org file (SPEC §13): bytes to a document, refusing what a hostile or broken file
can do before any value is looked at.

- Size: over `ORG_FILE_MAX_BYTES` (default 5 MB) is refused before the file is read or parsed.
- Encoding: UTF-8 (a BOM is allowed); anything else is an error with the line of the bad byte.
- YAML: the safe loader (libyaml when installed), with duplicate keys refused with their line,
  and anchors/aliases refused altogether. An org file never needs them (`export` never writes
  them, and an alias makes one edit change several entries unseen in a review), and refusing
  them while the document is built means an alias bomb — a few hundred bytes that expand to
  millions of nodes — fails at its first alias, in constant time, without counting heuristics.
  Nesting is bounded by libyaml (and by Python's recursion limit without it).
- JSON: duplicate keys refused (`object_pairs_hook`), with the line of the mapping.

`parse_document` is the same for a body that did not come from a file (the API's raw JSON)."""

from __future__ import annotations

import json
import json.decoder
import json.scanner
from pathlib import Path

import yaml
from django.conf import settings
from yaml.constructor import ConstructorError

from escalations.orgfile.checks import show
from escalations.orgfile.schema import OrgFileError

_BOM = b"\xef\xbb\xbf"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def max_bytes() -> int:
    return settings.ORG_FILE_MAX_BYTES


def _too_big(source: str, size: int, *, at_least: bool = False) -> OrgFileError:
    limit = max_bytes()
    about = f", about {limit / 2**20:.1f} MB" if limit >= 2**20 else ""
    is_ = "is at least" if at_least else "is"
    return OrgFileError(
        source,
        [
            f"the file {is_} {size:,} bytes; an org file may have at most {limit:,} bytes"
            f"{about} (setting ORG_FILE_MAX_BYTES)"
        ],
    )


def read_document(path: str | Path) -> dict:
    """The document in the file at `path`, checked for size, encoding and YAML/JSON syntax."""
    path = Path(path)
    limit = max_bytes()
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            if size > limit:  # refused before reading
                raise _too_big(str(path), size)
            raw = handle.read(limit + 1)  # a pipe or a growing file has no size to trust
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        raise OrgFileError(str(path), [f"cannot read the file: {reason}"]) from None
    if len(raw) > limit:
        raise _too_big(str(path), len(raw), at_least=True)
    fmt = "json" if path.suffix.lower() == ".json" else "yaml"
    return parse_document(raw, fmt=fmt, source=str(path))


def parse_document(raw: bytes | str, *, fmt: str, source: str = "<document>") -> dict:
    """Parse a YAML or JSON org document (`fmt`: "yaml" or "json") from bytes or text."""
    limit = max_bytes()
    if isinstance(raw, str):
        if len(raw) > limit:  # at least as many bytes as characters: no need to encode it all
            raise _too_big(source, len(raw), at_least=True)
        size = len(raw.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise _too_big(source, size)
        text = raw
    else:
        if len(raw) > limit:
            raise _too_big(source, len(raw))
        text = _decode(raw, source)
    try:
        data = _parse_json(text) if fmt == "json" else _parse_yaml(text)
    except (yaml.YAMLError, ValueError) as exc:
        kind = "JSON" if fmt == "json" else "YAML"
        raise OrgFileError(source, [f"not valid {kind}: {_describe(exc)}"]) from None
    except RecursionError:
        raise OrgFileError(source, ["the document is nested too deeply"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise OrgFileError(
            source, ["the document must be a mapping of thresholds, markets, sources, ..."]
        )
    return data


def _describe(exc: Exception) -> str:
    """One line: what is wrong and where (a YAML error's own text spans several lines)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        context = f"{exc.context}: " if exc.context else ""
        return f"{context}{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


def _decode(raw: bytes, source: str) -> str:
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise OrgFileError(
            source,
            [
                f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line}, column {column} "
                "cannot be read; save the file as UTF-8"
            ],
        ) from None


class _StrictYamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe YAML, refusing aliases, merge keys and duplicate keys while the document is built."""

    def construct_object(self, node, deep=False):
        if node in self.constructed_objects or node in self.recursive_objects:
            raise ConstructorError(
                None,
                None,
                "anchors and aliases (&name, *name) are not allowed in an org file: write the "
                "value out (the anchor is here)",
                node.start_mark,
            )
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:  # `2026-02-30`, `!!int x`, 5,000-digit ints
            raise ConstructorError(None, None, show(str(exc)), node.start_mark) from None

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            raise ConstructorError(
                None, None, f"expected a mapping, found {node.id}", node.start_mark
            )
        mapping: dict = {}
        lines: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                raise ConstructorError(
                    None,
                    None,
                    "merge keys (<<) are not allowed in an org file",
                    key_node.start_mark,
                )
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise ConstructorError(
                    None, None, "a list or mapping cannot be a key", key_node.start_mark
                ) from None
            if key in mapping:
                raise ConstructorError(
                    None,
                    None,
                    f"duplicate key {show(key)} (first at line {lines[key] + 1})",
                    key_node.start_mark,
                )
            lines[key] = key_node.start_mark.line
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


def _parse_yaml(text: str):
    return yaml.load(text, Loader=_StrictYamlLoader)  # a SafeLoader subclass


class _DuplicateKey(ValueError):
    def __init__(self, key: str, line: int | None = None):
        where = f" in the mapping at line {line}" if line else ""
        super().__init__(f"duplicate key {show(key)}{where}")
        self.key = key


def _unique_pairs(pairs):
    mapping = {}
    for key, value in pairs:
        if key in mapping:
            raise _DuplicateKey(key)
        mapping[key] = value
    return mapping


def _parse_json(text: str):
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except _DuplicateKey:
        _locate_duplicate(text)  # raises with the line
        raise


def _locate_duplicate(text: str) -> None:
    """Parse again with the pure-Python scanner, which can tell where each mapping starts, to
    name the line of the one with a duplicate key. Only on the error path: it is ~10x slower."""
    starts: list[int] = []

    def pairs(items):
        mapping = {}
        for key, value in items:
            if key in mapping:
                line = text.count("\n", 0, starts[-1]) + 1
                raise _DuplicateKey(key, line)
            mapping[key] = value
        return mapping

    def parse_object(s_and_end, *args):
        starts.append(s_and_end[1])
        try:
            return json.decoder.JSONObject(s_and_end, *args)
        finally:
            starts.pop()

    decoder = json.JSONDecoder(object_pairs_hook=pairs)
    decoder.parse_object = parse_object
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    decoder.decode(text)
