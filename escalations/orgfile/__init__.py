"""The org file (SPEC §13): `parse` (bytes to a document: size, encoding, strict YAML/JSON),
`schema` with `checks` (what a valid document is: types, formats, duplicates), `load` (all or
nothing, with a dry run) and `export`."""

from escalations.orgfile.export import dump_document, export_document
from escalations.orgfile.load import LoadReport, load_document, load_org
from escalations.orgfile.parse import parse_document, read_document
from escalations.orgfile.schema import OrgFileError

__all__ = [
    "LoadReport",
    "OrgFileError",
    "dump_document",
    "export_document",
    "load_document",
    "load_org",
    "parse_document",
    "read_document",
]
