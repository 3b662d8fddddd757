"""VOSI documents: availability, capabilities (TAP, cone search) and tables.

Built with ElementTree from the same TAP_SCHEMA tables queries read, so
``/tap/tables`` and ``TAP_SCHEMA.columns`` cannot disagree.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

import pyarrow as pa

VOSI_AVAIL = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
VOSI_CAP = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
VOSI_TABLES = "http://www.ivoa.net/xml/VOSITables/v1.0"
VR = "http://www.ivoa.net/xml/VOResource/v1.0"
VS = "http://www.ivoa.net/xml/VODataService/v1.1"
TR = "http://www.ivoa.net/xml/TAPRegExt/v1.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
for prefix, uri in (("vosi", VOSI_AVAIL), ("vosicap", VOSI_CAP), ("vosit", VOSI_TABLES),
                    ("vr", VR), ("xsi", XSI)):
    ET.register_namespace(prefix, uri)


def _text(parent: ET.Element, tag: str, text: str | None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def availability(up: bool, note: str) -> bytes:
    root = ET.Element(f"{{{VOSI_AVAIL}}}availability")
    _text(root, f"{{{VOSI_AVAIL}}}available", "true" if up else "false")
    _text(root, f"{{{VOSI_AVAIL}}}note", note)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _interface(parent: ET.Element, url: str, kind: str = "vs:ParamHTTP",
               role: str | None = None) -> None:
    attrs = {f"{{{XSI}}}type": kind}
    if role:
        attrs["role"] = role
    interface = ET.SubElement(parent, "interface", attrs)
    _text(interface, "accessURL", url, use="base")


def capabilities(tap_url: str, cone_urls: Mapping[str, str], max_sync_rows: int,
                 max_async_rows: int, upload_bytes: int) -> bytes:
    """TAP 1.1 (ADQL 2.1, its geometry, UPLOAD, the formats), VOSI, and each cone search."""
    root = ET.Element(f"{{{VOSI_CAP}}}capabilities")
    for prefix, uri in (("tr", TR), ("vs", VS)):  # named in xsi:type values only,
        root.set(f"xmlns:{prefix}", uri)                      # which ElementTree cannot see
    tap = ET.SubElement(root, "capability", {"standardID": "ivo://ivoa.net/std/TAP",
                                             f"{{{XSI}}}type": "tr:TableAccess"})
    _interface(tap, tap_url, role="std")
    language = ET.SubElement(tap, "language")
    _text(language, "name", "ADQL")
    _text(language, "version", "2.1", ivoId="ivo://ivoa.net/std/ADQL#v2.1")
    _text(language, "description", "ADQL 2.1; geometry on gaia_source's (ra, dec) prunes "
          "the HEALPix layout")
    features = ET.SubElement(language, "languageFeatures",
                             type="ivo://ivoa.net/std/TAPRegExt#features-adqlgeo")
    for name in ("POINT", "CIRCLE", "BOX", "POLYGON", "CONTAINS", "INTERSECTS", "DISTANCE",
                 "COORD1", "COORD2", "COORDSYS"):
        feature = ET.SubElement(features, "feature")
        _text(feature, "form", name)
    for mime, alias in (("application/x-votable+xml", "votable"),
                        ("application/x-votable+xml;serialization=tabledata", "votable/td"),
                        ("text/csv", "csv"), ("application/vnd.apache.parquet", "parquet"),
                        ("application/fits", "fits")):
        output = ET.SubElement(tap, "outputFormat")
        _text(output, "mime", mime)
        _text(output, "alias", alias)
    _text(tap, "uploadMethod", None, ivoId="ivo://ivoa.net/std/TAPRegExt#upload-inline")
    limit = ET.SubElement(tap, "outputLimit")
    _text(limit, "default", str(max_sync_rows), unit="row")
    _text(limit, "hard", str(max_async_rows), unit="row")
    upload = ET.SubElement(tap, "uploadLimit")
    _text(upload, "hard", str(upload_bytes), unit="byte")
    for standard, path in (("ivo://ivoa.net/std/VOSI#availability", "/availability"),
                           ("ivo://ivoa.net/std/VOSI#capabilities", "/capabilities"),
                           ("ivo://ivoa.net/std/VOSI#tables-1.1", "/tables")):
        capability = ET.SubElement(root, "capability", standardID=standard)
        _interface(capability, tap_url + path)
    for table, url in cone_urls.items():
        cone = ET.SubElement(root, "capability", standardID="ivo://ivoa.net/std/ConeSearch")
        _interface(cone, url, role="std")
        _text(cone, "description", f"Simple Cone Search 1.03 on {table}")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def tables(tap_schema: Mapping[str, pa.Table]) -> bytes:
    """``vosi:tableset``: each schema, its tables and their columns, from TAP_SCHEMA."""
    root = ET.Element(f"{{{VOSI_TABLES}}}tableset")
    columns = tap_schema["columns"].to_pylist()
    for schema_row in tap_schema["schemas"].to_pylist():
        schema = ET.SubElement(root, "schema")
        _text(schema, "name", schema_row["schema_name"])
        _text(schema, "description", schema_row["description"])
        for table_row in tap_schema["tables"].to_pylist():
            if table_row["schema_name"] != schema_row["schema_name"]:
                continue
            table = ET.SubElement(schema, "table", type="output")
            _text(table, "name", table_row["table_name"])
            _text(table, "description", table_row["description"])
            for row in columns:
                if row["table_name"] == table_row["table_name"]:
                    _column(table, row)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _column(table: ET.Element, row: dict) -> None:
    column = ET.SubElement(table, "column")
    _text(column, "name", row["column_name"])
    for key in ("description", "unit", "ucd"):
        if row[key]:
            _text(column, key, row[key])
    attrs = {f"{{{XSI}}}type": "vs:TAPType"}
    if row["arraysize"]:
        attrs["arraysize"] = row["arraysize"]
    _text(column, "dataType", row["datatype"], **attrs)
    for flag in ("indexed", "principal", "std"):
        if row[flag]:
            _text(column, "flag", flag)
