"""Tell a file's type from its content (magic bytes), never from what the client claims."""

from __future__ import annotations

import io
import zipfile
from typing import Final

PDF: Final = "application/pdf"
PNG: Final = "image/png"
JPEG: Final = "image/jpeg"
GIF: Final = "image/gif"
DOCX: Final = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX: Final = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT: Final = "application/vnd.oasis.opendocument.text"
ODS: Final = "application/vnd.oasis.opendocument.spreadsheet"
ODP: Final = "application/vnd.oasis.opendocument.presentation"
ZIP: Final = "application/zip"
DOC: Final = "application/msword"
XLS: Final = "application/vnd.ms-excel"
PPT: Final = "application/vnd.ms-powerpoint"
CSV: Final = "text/csv"
TEXT: Final = "text/plain"
JSON: Final = "application/json"

EXTENSIONS: Final = {
    PDF: ".pdf",
    PNG: ".png",
    JPEG: ".jpg",
    GIF: ".gif",
    DOCX: ".docx",
    XLSX: ".xlsx",
    PPTX: ".pptx",
    ODT: ".odt",
    ODS: ".ods",
    ODP: ".odp",
    ZIP: ".zip",
    DOC: ".doc",
    XLS: ".xls",
    PPT: ".ppt",
    CSV: ".csv",
    TEXT: ".txt",
    JSON: ".json",
}

_OOXML_PARTS: Final = (("word/", DOCX), ("xl/", XLSX), ("ppt/", PPTX))
_ODF_TYPES: Final = frozenset({ODT, ODS, ODP})
_OLE_BY_EXTENSION: Final = {".xls": XLS, ".ppt": PPT}
_TEXT_BY_EXTENSION: Final = {".csv": CSV, ".json": JSON}


def content_type(data: bytes, filename: str | None) -> str | None:
    """Return the sniffed MIME type of `data`, or None when it is no type we know."""
    if data.startswith(b"%PDF"):
        return PDF
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if data.startswith(b"PK\x03\x04"):
        return _zip_type(data)
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        # OLE compound files hide their application deep inside; the extension is the practical tiebreak.
        return _OLE_BY_EXTENSION.get(_extension(filename), DOC)
    if b"\x00" not in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return _TEXT_BY_EXTENSION.get(_extension(filename), TEXT)
    return None


def _zip_type(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if "mimetype" in names:
                with archive.open("mimetype") as member:
                    declared = member.read(100).decode("ascii", "replace").strip()
                if declared in _ODF_TYPES:
                    return declared
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    for prefix, kind in _OOXML_PARTS:
        if any(name.startswith(prefix) for name in names):
            return kind
    return ZIP


def _extension(filename: str | None) -> str:
    if not filename or "." not in filename:
        return ""
    return "." + filename.rsplit(".", 1)[1].lower()
