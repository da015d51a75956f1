"""CAP test helpers: the vendored OASIS CAP 1.2 schema (schemas/, with its notice) and parsing."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from xml.etree import ElementTree as ET

from lxml import etree

from alerts.cap import CAP_NS

SCHEMA_PATH = Path(__file__).parent / "schemas" / "CAP-v1.2.xsd"
NS = {"cap": CAP_NS}


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


def validate_cap(xml: bytes) -> ET.Element:
    """Assert `xml` is a CAP 1.2 alert valid against the OASIS schema; return it parsed."""
    assert xml.startswith(b"<?xml"), xml[:60]
    schema = _schema()
    doc = etree.fromstring(xml)
    if not schema.validate(doc):
        raise AssertionError(f"CAP message not valid against the OASIS CAP 1.2 schema: {schema.error_log}\n"
                             f"{xml.decode()}")
    root = ET.fromstring(xml)
    assert root.tag == f"{{{CAP_NS}}}alert"
    return root


def t(el: ET.Element, path: str) -> str | None:
    return el.findtext(path, namespaces=NS)
