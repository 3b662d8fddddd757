"""The AVI SDK: what a plugin declares, and nothing about how it is run.

An AVI (Added Value Interface) is a class with

- a :class:`Manifest` (who, what, which version),
- one pydantic ``Params`` model — written once, it is the form, the CLI
  options and the API's validation,
- :meth:`AVI.resources` — the cores and memory the scheduler will grant,
- :attr:`AVI.lanes` and :meth:`AVI.small` — whether a job may run in the warm lane
  (a Spark session kept open, no start-up per job) or needs its own Spark application,
- :meth:`AVI.tasks` — an ordered pipeline of :class:`Task` objects, each
  declaring the catalogue tables it reads, the earlier tasks it depends on
  and the parameters that shape its output (so the output can be addressed
  by content and skipped when it already exists),
- :meth:`AVI.view` — a Panel object showing a finished result folder.

The runner (:mod:`spark_jobs.runner`) does the rest: pinning table versions,
addressing outputs, progress, provenance, failure handling.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from avi_plugins.params import ParamsError, explain_validation_error

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")

#: Where a job runs: its own Spark application, or a warm worker's open session.
Lane = Literal["spark", "warm"]
LANES: tuple[Lane, ...] = ("spark", "warm")
#: A warm job may read about this many catalogue rows: a warm worker holds one core and a
#: small heap, and a job this size answers in about a second there.
WARM_ROWS = 2_000_000


class Manifest(BaseModel):
    """Identity of an AVI, shown in the gallery and kept in every provenance record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Registry name (lower_snake_case), also the entry-point name.")
    version: str = Field(description="Version of the AVI; part of every output's address.")
    title: str = Field(description="Human title for the gallery.")
    summary: str = Field(description="One or two sentences: what it computes, from what.")
    author: str = Field(description="Author or team.")
    tags: tuple[str, ...] = Field(default=(), description="Gallery tags.")
    commit: str | None = Field(default=None, description="Git commit it was published from.")

    @field_validator("name")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"AVI name {value!r} must be lower_snake_case, 2-63 characters")
        return value


class Resources(BaseModel):
    """What one job asks for: the currency of the scheduler's fair share."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    driver_cores: int = Field(default=1, ge=1, le=32)
    driver_memory_mb: int = Field(default=1024, ge=256, le=262144)
    executor_cores: int = Field(default=1, ge=1, le=32)
    executor_memory_mb: int = Field(default=1024, ge=256, le=262144)
    executors: int = Field(default=1, ge=0, le=256)

    @property
    def cores(self) -> int:
        """Total cores: driver plus all executors."""
        return self.driver_cores + self.executor_cores * self.executors

    @property
    def memory_mb(self) -> int:
        """Total memory in MiB: driver plus all executors."""
        return self.driver_memory_mb + self.executor_memory_mb * self.executors

    def spark_conf(self) -> dict[str, str]:
        """The Spark settings that grant exactly this request on a cluster."""
        return {
            "spark.driver.cores": str(self.driver_cores),
            "spark.driver.memory": f"{self.driver_memory_mb}m",
            "spark.executor.cores": str(self.executor_cores),
            "spark.executor.memory": f"{self.executor_memory_mb}m",
            "spark.executor.instances": str(self.executors),
            "spark.cores.max": str(max(1, self.executor_cores * self.executors)),
        }


@dataclass
class TaskContext:
    """What a running task may touch: Spark, its params, its pinned tables and folders."""

    spark: SparkSession
    params: BaseModel
    output_dir: Path
    inputs: Mapping[str, Path]
    tables: Mapping[str, Any]
    say: Callable[[str], None] = field(default=lambda message: None)

    def table(self, name: str) -> Any:
        """The pinned :class:`lakehouse.Catalog` for a table this task declared."""
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(
                f"table {name!r} was not declared by this task; add it to Task(tables=...) "
                f"so its version is pinned (declared: {sorted(self.tables)})"
            ) from None


@dataclass(frozen=True)
class Task:
    """One step of an AVI's pipeline.

    ``run(ctx)`` writes its files into ``ctx.output_dir``. The output is
    addressed by the AVI version, the values of ``params`` (all parameters
    when None), ``key(params)`` (extra identity, e.g. a digest of an uploaded
    file), the pinned versions of ``tables`` and the addresses of the tasks in
    ``after``; when that address already exists the task is skipped.
    Outputs of tasks with ``result=True`` are published as the job's result.
    """

    name: str
    run: Callable[[TaskContext], None]
    tables: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    params: tuple[str, ...] | None = None
    key: Callable[[Any], Mapping[str, Any]] | None = None
    result: bool = False


class AVI:
    """Base class of every AVI. Subclasses set ``manifest`` and ``Params``."""

    manifest: ClassVar[Manifest]
    Params: ClassVar[type[BaseModel]]
    #: The lanes this AVI's jobs may run in. Declare "warm" only for code that leaves no
    #: state behind in the Python process (a warm worker runs other users' jobs after it).
    lanes: ClassVar[tuple[Lane, ...]] = ("spark",)

    def resources(self, params: BaseModel) -> Resources:
        """Resources one job with these params needs (default: one small executor)."""
        return Resources()

    def small(self, params: BaseModel, table_rows: Mapping[str, int]) -> bool:
        """Whether this job is small enough for the warm lane; ``table_rows`` gives the rows
        of each catalogue table the AVI reads (from the Delta log). Default: no."""
        return False

    def lane(self, params: BaseModel, table_rows: Mapping[str, int]) -> Lane:
        """The lane a job runs in: warm when the AVI declares it and the job is small."""
        return "warm" if "warm" in self.lanes and self.small(params, table_rows) else "spark"

    def tables(self) -> list[str]:
        """The catalogue tables this AVI's tasks read, sorted."""
        return sorted({name for task in self.tasks() for name in task.tables})

    def tasks(self) -> list[Task]:
        """The pipeline, in execution order."""
        raise NotImplementedError(f"{type(self).__name__} must define tasks()")

    def view(self, result_dir: Path) -> Any:
        """A Panel object showing a result folder."""
        raise NotImplementedError(f"{type(self).__name__} must define view(result_dir)")

    # -- helpers the platform uses -------------------------------------------------

    @classmethod
    def params_schema(cls) -> dict[str, Any]:
        """JSON schema of the parameters (drives forms, CLI help and API validation)."""
        return cls.Params.model_json_schema()

    @classmethod
    def parse_params(cls, raw: Mapping[str, Any]) -> BaseModel:
        """Validate raw parameters; on error raise :class:`ParamsError` naming fields and ranges."""
        try:
            return cls.Params.model_validate(dict(raw))
        except ValidationError as error:
            raise ParamsError(explain_validation_error(error, cls.params_schema())) from None

    def check(self) -> None:
        """Refuse a malformed plugin early (used by the registry when loading it)."""
        if not isinstance(getattr(type(self), "manifest", None), Manifest):
            raise TypeError(f"{type(self).__name__}.manifest must be an avi_plugins.sdk.Manifest")
        params_cls = getattr(type(self), "Params", None)
        if not (isinstance(params_cls, type) and issubclass(params_cls, BaseModel)):
            raise TypeError(f"{type(self).__name__}.Params must be a pydantic BaseModel subclass")
        tasks = self.tasks()
        if not tasks:
            raise ValueError(f"{self.manifest.name}: tasks() returned no task")
        seen: set[str] = set()
        fields = set(params_cls.model_fields)
        for task in tasks:
            if task.name in seen:
                raise ValueError(f"{self.manifest.name}: task name {task.name!r} used twice")
            missing = [name for name in task.after if name not in seen]
            if missing:
                raise ValueError(
                    f"{self.manifest.name}: task {task.name!r} runs after {missing}, "
                    "which are not earlier tasks"
                )
            unknown = sorted(set(task.params or ()) - fields)
            if unknown:
                raise ValueError(
                    f"{self.manifest.name}: task {task.name!r} names unknown params {unknown}"
                )
            seen.add(task.name)
        if not any(task.result for task in tasks):
            raise ValueError(f"{self.manifest.name}: no task is marked result=True")
        unknown_lanes = sorted(set(self.lanes) - set(LANES))
        if unknown_lanes or "spark" not in self.lanes:
            raise ValueError(f"{self.manifest.name}: lanes must include 'spark' and name only "
                             f"{LANES}, not {self.lanes}")
