"""Finding the filter that broke or stalled a micro-batch, so the others go on.

All filters run in one Spark job per micro-batch (see :mod:`spark_jobs.alerts.stream`).
Static checks refuse what they can at creation, but a condition can still raise on
some alert only (ANSI arithmetic: ``psfFlux / psfFluxErr`` with an error of 0, a long
overflow) or take far longer than its share. When the batch's job raises, or runs over
its budget, each filter is evaluated alone over the batch's rows (decoded and annotated
once, cached) and the ones that raise or run over the budget are named, with why.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.alerts.filters import AlertFilter


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:500]


def failing_filters(
    rows: DataFrame, filters: Sequence[AlertFilter], *, budget_s: float
) -> list[tuple[AlertFilter, str]]:
    """The filters that raise over ``rows`` (the batch's annotated alerts, best cached), or
    take longer than ``budget_s`` alone, each with the reason its owner will read."""
    failing = []
    good = F.col("error").isNull()
    rows.count()  # decode and annotate (and cache) first: each filter is then timed alone
    for f in filters:
        started = time.perf_counter()
        try:
            rows.where(good & F.expr(f.spark_sql)).count()
        except PySparkException as error:
            failing.append((f, f"it raised while running on the alert stream: "
                               f"{first_line(error)}"))
            continue
        took = time.perf_counter() - started
        if took > budget_s:
            failing.append((f, f"it took {took:.1f} s over one micro-batch alone, over the "
                               f"{budget_s:.0f} s a filter may take; make it cheaper "
                               "(fewer LIKE wildcards, simpler arithmetic)"))
    return failing
