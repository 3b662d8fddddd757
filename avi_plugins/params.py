"""Parameter plumbing shared by the CLI, the runner and the API.

Parameters are declared once, as a pydantic model. This module turns that
model's JSON schema into what people read when they get it wrong (the field,
what was wrong, and the allowed range or choices) and parses ``k=v`` strings
from the command line according to each field's declared type.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError

#: JSON-schema ``format`` that marks a :data:`UserFile` parameter.
USER_FILE_FORMAT = "avip-user-file"

UserFile = Annotated[str, Field(min_length=1, max_length=1024,
                                json_schema_extra={"format": USER_FILE_FORMAT})]
"""A file the job reads. Through the platform it is given as ``space://me/PATH`` (or
``PATH``, inside your own space) or ``space://shared/SHARE_ID/PATH``, and the platform's
user-space layer resolves it to a local path before the AVI sees it; any other value is
refused, naming the field. Run locally (``avip avi run``), it is a path on your machine."""


class ParamsError(ValueError):
    """Invalid AVI parameters; ``problems`` holds one entry per field."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        self.problems = problems
        super().__init__(
            "invalid parameters:\n"
            + "\n".join(
                f"  {p['field']}: {p['message']}"
                + (f" (allowed: {p['allowed']})" if p["allowed"] else "")
                for p in problems
            )
        )


def _resolve(schema: Mapping[str, Any], prop: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = prop.get("$ref")
    if ref and ref.startswith("#/$defs/"):
        return schema.get("$defs", {}).get(ref.rsplit("/", 1)[-1], prop)
    return prop


def user_file_fields(model: type[BaseModel]) -> list[str]:
    """The names of ``model``'s :data:`UserFile` fields (optional ones too)."""
    schema = model.model_json_schema()
    return [
        name for name, prop in schema.get("properties", {}).items()
        if any(_resolve(schema, v).get("format") == USER_FILE_FORMAT
               for v in prop.get("anyOf", [prop]))
    ]


def allowed_values(schema: Mapping[str, Any], field: str) -> str:
    """Describe a field's allowed range or choices from the JSON schema ('' if unconstrained).

    >>> allowed_values({"properties": {"r": {"minimum": 0, "maximum": 5}}}, "r")
    '0 <= r <= 5'
    """
    prop = _resolve(schema, schema.get("properties", {}).get(field, {}))
    variants = prop.get("anyOf", [prop])
    parts: list[str] = []
    for variant in variants:
        variant = _resolve(schema, variant)
        if "enum" in variant:
            parts.append("one of " + ", ".join(repr(v) for v in variant["enum"]))
            continue
        low = (
            f"{variant['minimum']} <= " if "minimum" in variant
            else f"{variant['exclusiveMinimum']} < " if "exclusiveMinimum" in variant else ""
        )
        high = (
            f" <= {variant['maximum']}" if "maximum" in variant
            else f" < {variant['exclusiveMaximum']}" if "exclusiveMaximum" in variant else ""
        )
        if low or high:
            parts.append(f"{low}{field}{high}")
        elif "minLength" in variant or "maxLength" in variant:
            parts.append(
                f"length {variant.get('minLength', 0)}..{variant.get('maxLength', 'any')}"
            )
        elif "minItems" in variant or "maxItems" in variant:
            parts.append(f"{variant.get('minItems', 0)}..{variant.get('maxItems', 'any')} items")
    return " or ".join(parts)


def explain_validation_error(
    error: ValidationError, schema: Mapping[str, Any]
) -> list[dict[str, str]]:
    """One ``{"field", "message", "allowed"}`` dict per pydantic error."""
    problems = []
    for item in error.errors(include_url=False):
        loc = [str(part) for part in item["loc"]]
        field = ".".join(loc) or "(params)"
        top = loc[0] if loc else ""
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            known = ", ".join(sorted(schema.get("properties", {})))
            message = f"unknown parameter (known: {known})"
        problems.append(
            {"field": field, "message": message, "allowed": allowed_values(schema, top)}
        )
    return problems


def _field_types(schema: Mapping[str, Any], field: str) -> set[str]:
    prop = _resolve(schema, schema.get("properties", {}).get(field, {}))
    types = set()
    for variant in prop.get("anyOf", [prop]):
        variant = _resolve(schema, variant)
        if "type" in variant:
            types.add(variant["type"])
        elif "enum" in variant:
            types.update(type(v).__name__.replace("str", "string") for v in variant["enum"])
    return types


def parse_cli_params(pairs: Iterable[str], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``["radius_deg=0.5", "columns=[\\"ra\\"]"]`` into a params dict.

    String fields keep the text as typed; other fields are read as JSON
    (numbers, booleans, lists, objects), falling back to the text so that
    pydantic can report a precise error.

    >>> schema = {"properties": {"n": {"type": "integer"}, "s": {"type": "string"}}}
    >>> parse_cli_params(["n=3", "s=42"], schema)
    {'n': 3, 's': '42'}
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ParamsError(
                [{"field": pair, "message": "expected KEY=VALUE", "allowed": ""}]
            )
        types = _field_types(schema, key)
        if types == {"string"}:
            params[key] = text
            continue
        try:
            params[key] = json.loads(text)
        except json.JSONDecodeError:
            params[key] = text
    return params
