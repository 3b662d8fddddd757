"""The platform's one settings object.

Every knob of avip lives here, read from ``AVIP_*`` environment variables and
an optional TOML file named by ``AVIP_CONFIG``. Nothing else in the code base
reads the environment: libraries take explicit arguments and the entry points
(CLI, API, job runner, notes) pass values from :func:`get_settings`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from config.kafka import KafkaAuth

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Configuration for every avip component (embedded defaults shown)."""

    model_config = SettingsConfigDict(env_prefix="AVIP_", extra="forbid")

    data_dir: Path = Field(
        default=REPO_ROOT / ".data",
        description="Root of embedded-mode state: the lakehouse, job store and user space.",
    )
    lakehouse_uri: str | None = Field(
        default=None,
        description="Where the catalogue's Delta tables live (a directory or s3a:// URI). "
        "Defaults to <data_dir>/lakehouse.",
    )
    spark_master: str = Field(
        default="local[*]", description="local[n], or spark://host:port for a standalone cluster."
    )
    spark_driver_memory: str = Field(default="4g", description="Driver JVM heap.")
    spark_executor_memory: str = Field(default="2g", description="Executor heap (cluster mode).")
    spark_shuffle_partitions: int = Field(
        default=8, ge=1, description="spark.sql.shuffle.partitions for platform sessions."
    )
    jars_dir: Path = Field(
        default=REPO_ROOT / ".jars" / "spark",
        description="JVM jars resolved by `make jars` (Delta, hadoop-aws, Kafka connector).",
    )

    # --- job service (api/) ---
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the job store; defaults to SQLite at <data_dir>/avip.db. "
        "Production: postgresql+psycopg://user@host/db.",
    )
    api_host: str = Field(default="127.0.0.1", description="Address `avip serve` binds.")
    api_port: int = Field(default=8765, ge=1, le=65535, description="Port `avip serve` binds.")
    api_url: str = Field(
        default="http://127.0.0.1:8765", description="Where the CLI and dashboards reach the API."
    )
    client_config: Path = Field(
        default=Path("~/.config/avip/client.toml"),
        description="File where `avip login` keeps the API URL and token.",
    )
    job_backend: str = Field(
        default="local",
        description="local (local[n] per job), standalone (spark_master) or kubernetes "
        "(a SparkApplication per job in the user's namespace).",
    )
    k8s_kubeconfig: Path | None = Field(
        default=None,
        description="kubeconfig for the kubernetes job backend; unset = in-cluster credentials.",
    )
    k8s_image: str = Field(
        default="avip/platform:0.1.0", description="Platform image of Spark drivers/executors."
    )
    cluster_cores: int = Field(
        default=8, ge=1,
        description="Cores the scheduler may hand out in total (in local mode these are "
        "local[n] threads, which may exceed the machine's cores).",
    )
    cluster_memory_mb: int = Field(
        default=8192, ge=256, description="Memory (MB) the scheduler may hand out in total."
    )
    warm_workers: int = Field(
        default=2, ge=0, le=64,
        description="Warm-lane workers: processes keeping a Spark session open, each running "
        "one small job at a time (0: every job gets its own Spark application).",
    )
    warm_worker_memory: str = Field(
        default="1g", description="JVM heap of each warm worker (spark.driver.memory).")
    warm_job_memory_mb: int = Field(
        default=1024, ge=64,
        description="Memory budget of one warm job (MiB): what it is charged, and the most its "
        "worker's Python process may grow while it runs before the job is stopped.",
    )
    warm_worker_nice: int = Field(
        default=10, ge=0, le=19,
        description="CPU niceness of the warm workers: where they share a machine with Spark "
        "applications (embedded mode), a large job keeps its CPU while small jobs use the rest.",
    )
    warm_time_budget_s: float = Field(
        default=120.0, gt=0,
        description="A warm job running longer than this is stopped, and says so.")
    warm_lane_url: str | None = Field(
        default=None,
        description="URL of the `avip warm` service running the warm workers (production); "
        "unset: the scheduler starts them itself.",
    )
    warm_lane_token: SecretStr | None = Field(
        default=None, description="Bearer token the scheduler shows the `avip warm` service.")
    scheduler_interval_s: float = Field(
        default=0.5, gt=0, description="Seconds between scheduler ticks in `avip serve`."
    )
    dashboards_origins: list[str] = Field(
        default_factory=list,
        description="Extra host[:port] names browsers may open the dashboards' websocket "
        "from (the Service or Ingress name users reach them by).",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token Prometheus sends to scrape /metrics (an operator's token "
        "works too); unset: operators only. The metrics name users and their queues.",
    )
    max_request_bytes: int = Field(
        default=1 << 20, ge=1024,
        description="Largest request body the API reads, uploads to a space excepted (their "
        "quota bounds them); a larger one is refused with 413.",
    )
    max_queued_jobs_per_user: int = Field(
        default=100, ge=1,
        description="Jobs one user may have waiting at once (the pool's max_jobs bounds those "
        "running); one more is refused with 429.",
    )
    max_alert_filters_per_user: int = Field(
        default=20, ge=1, description="Alert filters one user may hold; one more is 429.",
    )
    token_ttl_days: int = Field(default=90, ge=1, description="Lifetime of newly issued tokens.")
    auth_cache_ttl_s: float = Field(
        default=10.0, ge=0,
        description="Seconds the API may reuse a token check in memory (0 = check the store on "
        "every request). Changes through this process apply at once; through another, after this.",
    )
    link_secret: SecretStr | None = Field(
        default=None, min_length=32,
        description="Key signing the token-free result links TOPCAT and Aladin fetch (SAMP); "
        "unset: one generated once into <data_dir>/link.secret. Set the same value on every "
        "API replica that does not share data_dir.",
    )
    link_ttl_s: int = Field(
        default=3600, ge=60, le=7 * 86400,
        description="Seconds a result link works after it was made.")

    # --- IVOA services: TAP, cone search ---
    tap_anonymous: bool = Field(
        default=False,
        description="Let requests without a token read through TAP sync, cone search and "
        "VOSI (async TAP always needs a token), under the anonymous limits below.")
    tap_sync_max_rows: int = Field(
        default=100_000, ge=1, description="Most rows a sync TAP query or cone search returns "
        "(its MAXREC default and ceiling; more: async).")
    tap_anonymous_max_rows: int = Field(
        default=2_000, ge=1, description="The same ceiling for requests without a token.")
    tap_sync_scan_rows: int = Field(
        default=5_000_000, ge=1,
        description="Most catalogue rows a sync query may read in the API process; a larger "
        "one is refused with advice to run it async (on Spark, as a job).")
    tap_sync_join_rows: int = Field(
        default=50_000_000, ge=1,
        description="Most row combinations a sync join of several tables may form (DuckDB "
        "joins on a condition row by row); more: async.")
    tap_sync_timeout_s: float = Field(
        default=30.0, gt=0, description="Longest a sync query runs before it is stopped and "
        "refused with advice to run it async.")
    tap_sync_per_caller: int = Field(
        default=2, ge=1, description="Sync TAP and cone-search requests one caller may have "
        "running at once; one more is 429.")
    tap_async_max_rows: int = Field(
        default=10_000_000, ge=1, description="MAXREC default and ceiling of async queries.")
    tap_upload_max_bytes: int = Field(
        default=64 << 20, ge=1024, description="Largest TAP request body (UPLOAD tables).")
    tap_sync_upload_rows: int = Field(
        default=10_000, ge=1, description="Most rows a sync query's UPLOAD may hold.")
    tap_destruction_days: int = Field(
        default=7, ge=1, le=365, description="Days an async TAP job is kept by default.")
    tap_execution_duration_s: int = Field(
        default=3600, ge=1, description="Longest run an async TAP job is allowed (UWS).")

    # --- S3-compatible object storage (lakehouse on s3a://, user space) ---
    s3_endpoint: str | None = Field(
        default=None,
        description="S3 endpoint URL (MinIO, Ceph...: http://host:9000); unset for AWS S3.",
    )
    s3_access_key: str | None = Field(default=None, description="S3 access key id.")
    s3_secret_key: SecretStr | None = Field(default=None, description="S3 secret access key.")
    s3_region: str = Field(default="us-east-1", description="S3 region (signing scope).")
    s3_bucket: str | None = Field(
        default=None, description="Bucket of the lakehouse (s3a://<bucket>/...) and user spaces."
    )
    user_space_backend: Literal["local", "s3"] = Field(
        default="local",
        description="Where user spaces live: local (<data_dir>/space/<user>) or s3 "
        "(s3://<s3_bucket>/<s3_space_prefix>/<user>/, with the s3_* credentials).",
    )
    s3_space_prefix: str = Field(
        default="space", min_length=1, description="Key prefix of the user spaces in s3_bucket."
    )

    # --- Kafka: job events and alert streams ---
    kafka_bootstrap: str | None = Field(
        default=None,
        description="Kafka bootstrap servers (host:port); unset = embedded (outbox only).",
    )
    kafka_username: str | None = Field(
        default=None,
        description="This process's Kafka principal (SASL/SCRAM); unset: an open broker. Each "
        "service has its own (avip-relay, avip-stream), each user theirs for their filters.",
    )
    kafka_password: SecretStr | None = Field(default=None, description="Its SCRAM password.")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = Field(
        default="SCRAM-SHA-512", description="The SCRAM mechanism the broker was set up with.")
    kafka_security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="SASL_PLAINTEXT", description="SASL_SSL where the broker's listener has TLS.")
    events_topic: str = Field(
        default="avip.job-events", description="Topic the event relay publishes to."
    )
    alerts_raw_topic: str = Field(default="avip.alerts.raw", description="Raw alert topic.")
    alerts_checkpoint: str | None = Field(
        default=None,
        description="Checkpoint of `avip alerts stream` (a path, file://, s3a:// or s3://): "
        "the stream's position; a restart resumes from it.",
    )
    alerts_filter_topic_prefix: str = Field(
        default="avip.alerts.filter", description="Filter output topics: <prefix>.<user>.<filter>."
    )
    zeppelin_url: str | None = Field(
        default=None, description="Zeppelin server for `avip zeppelin` (e.g. http://127.0.0.1:18490)."
    )
    zeppelin_user: str | None = Field(default=None, description="Zeppelin (Shiro) user name.")
    zeppelin_password: str | None = Field(default=None, description="Zeppelin (Shiro) password.")

    @field_validator("spark_master")
    @classmethod
    def _known_master(cls, value: str) -> str:
        if not (value.startswith(("local", "spark://", "k8s://"))):
            raise ValueError(
                f"spark_master {value!r} is not local[n], spark://host:port or k8s://..."
            )
        return value

    @property
    def store_url(self) -> str:
        """The job store's SQLAlchemy URL (SQLite under data_dir unless configured)."""
        return self.database_url or f"sqlite:///{self.data_dir / 'avip.db'}"

    @property
    def kafka_auth(self) -> KafkaAuth | None:
        """The Kafka credentials of this process (None when no username is set)."""
        if not self.kafka_username:
            return None
        if self.kafka_password is None:
            raise ValueError("AVIP_KAFKA_USERNAME is set but AVIP_KAFKA_PASSWORD is not; set both")
        return KafkaAuth(self.kafka_username, self.kafka_password.get_secret_value(),
                         self.kafka_sasl_mechanism, self.kafka_security_protocol)

    @property
    def space_root(self) -> Path:
        """Root of the per-user storage spaces (embedded mode: a local directory)."""
        return self.data_dir / "space"

    @property
    def warm_lane_enabled(self) -> bool:
        """Whether small jobs go to a warm lane: its own service, or workers of the scheduler."""
        return bool(self.warm_lane_url) or self.warm_workers > 0

    @property
    def catalogue_root(self) -> str:
        """The lakehouse root as a string URI or absolute path."""
        return self.lakehouse_uri or str(self.data_dir / "lakehouse")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("AVIP_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise FileNotFoundError(
                    f"AVIP_CONFIG names {config_file!r}, which is not a file; "
                    "point it at a TOML file or unset it"
                )
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings(**overrides: Any) -> Settings:
    """The process-wide settings (cached); overrides are for tests and tools."""
    return Settings(**overrides)
