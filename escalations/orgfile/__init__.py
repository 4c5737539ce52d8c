"""The org file (SPEC §13): `schema` (what a valid document is, reading it), `load` (all or
nothing, with a dry run) and `export`."""

from escalations.orgfile.export import dump_document, export_document
from escalations.orgfile.load import LoadReport, load_document, load_org
from escalations.orgfile.schema import OrgFileError, read_document

__all__ = [
    "LoadReport",
    "OrgFileError",
    "dump_document",
    "export_document",
    "load_document",
    "load_org",
    "read_document",
]
