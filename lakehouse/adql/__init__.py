"""ADQL onto the catalogue: parsing and planning (:mod:`.parse`, :mod:`.geometry`), the
TAP_SCHEMA tables (:mod:`.tap_schema`), and the two engines that run a plan: in-process
(:mod:`.local`: the interactive reader and DuckDB) and Spark (:mod:`.spark`)."""

from lakehouse.adql.errors import AdqlError
from lakehouse.adql.parse import Plan, Source, plan

__all__ = ["AdqlError", "Plan", "Source", "plan"]
