"""A test AVI for the warm lane (installed into a temporary folder by the tests' fixture):
one task whose behaviour the ``mode`` parameter picks, to crash, hang, hog memory, leave
state in the Spark application, or report what state it finds."""

from __future__ import annotations

import json
import os
import time
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from avi_plugins.sdk import AVI, Lane, Manifest, Task, TaskContext


class ProbeParams(BaseModel):
    mode: Literal["ok", "crash", "sleep", "hog", "leak", "peek"] = "ok"
    seconds: float = Field(60.0, ge=0)
    megabytes: int = Field(0, ge=0)
    secret: str = "nothing"


def _run(ctx: TaskContext) -> None:
    p: ProbeParams = ctx.params  # type: ignore[assignment]
    spark = ctx.spark
    found: dict[str, Any] = {"pid": os.getpid()}
    if p.mode == "crash":
        os._exit(3)
    elif p.mode == "sleep":
        time.sleep(p.seconds)
    elif p.mode == "hog":
        hoard = [bytearray(1 << 20) for _ in range(p.megabytes)]
        time.sleep(p.seconds)
        found["held_mb"] = len(hoard)
    elif p.mode == "leak":
        frame = spark.createDataFrame([(p.secret,)], "secret string")
        frame.createOrReplaceTempView("secret_view")
        frame.createOrReplaceGlobalTempView("secret_global")
        frame.write.saveAsTable("secret_table")
        frame.cache().count()
        spark.conf.set("avip.secret", p.secret)
        spark.udf.register("secret_udf", lambda: p.secret)
    elif p.mode == "peek":
        found["views"] = [t.name for t in spark.catalog.listTables()]
        found["global_views"] = [t.name for t in spark.catalog.listTables("global_temp")]
        found["databases"] = [d.name for d in spark.catalog.listDatabases()]
        found["conf"] = spark.conf.get("avip.secret", None)
        found["functions"] = [f.name for f in spark.catalog.listFunctions()
                              if f.name.startswith("secret")]
    (ctx.output_dir / "report.json").write_text(json.dumps(found))


class Probe(AVI):
    manifest = Manifest(name="warm_probe", version="0.1.0", title="Warm-lane probe",
                        summary="Crashes, hangs, hogs memory or looks around, on request.",
                        author="avip tests")
    Params = ProbeParams
    lanes: ClassVar[tuple[Lane, ...]] = ("spark", "warm")

    def small(self, params: Any, table_rows: Any) -> bool:
        return True

    def tasks(self) -> list[Task]:
        return [Task("probe", _run, result=True)]

    def view(self, result_dir: Any) -> Any:
        return str(result_dir)
