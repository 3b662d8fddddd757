"""User alert filters: a SQL ``WHERE`` condition, parsed and checked before it runs.

The parsing and checking is the platform's one filter checker
(:func:`lakehouse.filters.check_filter`: allow-listed predicates, operands
and functions; unknown columns, subqueries, UDFs, aggregates, DDL/DML and a
second statement refused with a :class:`FilterError` naming the problem).
This module adds what is particular to alerts: the columns of the alert row
(:func:`spark_jobs.alerts.rows.filter_columns`, case-sensitive, dotted struct
fields), a length limit, filter names, output formats and topics. What reaches
Spark is the SQL *regenerated* from the checked AST with every identifier
quoted, never the user's text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import types as T

from lakehouse.filters import FilterError, check_filter, render
from spark_jobs.alerts.rows import filter_columns

__all__ = [
    "FilterError",
    "AlertFilter",
    "check_where",
    "filters_from_json",
    "make_filter",
    "topic_for",
]

MAX_FILTER_CHARS = 4000
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
FORMATS = ("json", "avro")


def check_where(where: str, columns: dict[str, object] | None = None) -> str:
    """Validate a WHERE condition over alert columns; return the canonical Spark SQL.

    Raises
    ------
    FilterError
        For empty or overlong text, syntax errors, several statements, DDL/DML,
        queries or subqueries, unknown columns or functions, and conditions
        that are not boolean.
    """
    allowed = columns if columns is not None else filter_columns()
    text = (where or "").strip().rstrip(";").strip()
    if not text:
        raise FilterError(
            "the filter is empty: write a condition such as 'diaSource.psfFlux > 1000'"
        )
    if len(text) > MAX_FILTER_CHARS:
        raise FilterError(f"the filter has {len(text)} characters; the limit is {MAX_FILTER_CHARS}")
    tree = check_filter(
        text,
        allowed,
        dialect="spark",
        case_sensitive=True,
        boolean_columns=[n for n, t in allowed.items() if isinstance(t, T.BooleanType)],
        unknown_column_hint="see `avip alerts filters columns` for the list",
    )
    return render(tree, "spark")


@dataclass(frozen=True)
class AlertFilter:
    """An accepted filter as the streaming job sees it."""

    filter_id: int
    owner: str
    name: str
    where: str
    spark_sql: str
    topic: str
    output_format: str = "json"
    enabled: bool = True
    revision: str = ""  # changes whenever the owner edits or re-enables it


def topic_for(prefix: str, owner: str, name: str) -> str:
    """The output topic of a filter: ``<prefix>.<owner>.<name>`` (Kafka-legal)."""
    safe_owner = re.sub(r"[^A-Za-z0-9_-]", "_", owner)
    return f"{prefix}.{safe_owner}.{name}"[:249]


def make_filter(
    *,
    filter_id: int,
    owner: str,
    name: str,
    where: str,
    topic_prefix: str = "avip.alerts.filter",
    output_format: str = "json",
    enabled: bool = True,
) -> AlertFilter:
    """Check name, format and condition; build the filter (raises FilterError)."""
    if not NAME_PATTERN.match(name or ""):
        raise FilterError(
            f"filter name {name!r} must be 1-64 characters of a-z, 0-9, '_' or '-', "
            "starting with a letter or digit"
        )
    if output_format not in FORMATS:
        raise FilterError(f"output format {output_format!r} must be one of {', '.join(FORMATS)}")
    return AlertFilter(
        filter_id=filter_id,
        owner=owner,
        name=name,
        where=where,
        spark_sql=check_where(where),
        topic=topic_for(topic_prefix, owner, name),
        output_format=output_format,
        enabled=enabled,
    )


def filters_from_json(path: str) -> Callable[[], list[AlertFilter]]:
    """Filters from a JSON list of {owner, name, where, output_format?, enabled?}.

    Re-read every micro-batch."""

    def load() -> list[AlertFilter]:
        with open(path) as fh:
            items = json.load(fh)
        return [
            make_filter(
                filter_id=i,
                owner=d["owner"],
                name=d["name"],
                where=d["where"],
                output_format=d.get("output_format", "json"),
                enabled=d.get("enabled", True),
            )
            for i, d in enumerate(items)
        ]

    return load
