"""The submitters that run AVI jobs on Spark, behind one protocol
(:class:`spark_jobs.backends.protocol.JobBackend`): spark-submit driver processes,
local or on a standalone cluster (:mod:`.processes`), and SparkApplications on
Kubernetes (:mod:`.k8s`). :func:`backend_for` picks the one the settings name;
:func:`warm_backend_for` the warm lane for small jobs (:mod:`.warm`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from config.s3 import is_s3
from config.settings import Settings
from spark_jobs.backends.k8s.submitter import KubernetesJobs
from spark_jobs.backends.processes import LocalBackend, StandaloneBackend, driver_environment
from spark_jobs.backends.protocol import JobBackend
from spark_jobs.backends.warm.backend import WarmBackend

if TYPE_CHECKING:
    from spark_jobs.backends.warm.pool import WarmPool


def backend_for(settings: Settings) -> JobBackend:
    """The backend ``settings.job_backend`` names: local or standalone spark-submit drivers
    (with the platform's jars from ``jars_dir``), or SparkApplications on Kubernetes."""
    if settings.job_backend == "kubernetes":
        return KubernetesJobs.from_settings(settings)
    env = driver_settings(settings)
    if settings.job_backend == "local":
        return LocalBackend(jars_dir=settings.jars_dir, settings_env=env)
    if settings.job_backend == "standalone":
        return StandaloneBackend(settings.spark_master, jars_dir=settings.jars_dir,
                                 settings_env=env)
    raise ValueError(
        f"job_backend {settings.job_backend!r} is not 'local', 'standalone' or 'kubernetes'"
    )


def warm_pool(settings: Settings) -> WarmPool:
    """The warm workers the settings ask for (not started): ``warm_workers`` processes of
    ``local[1]`` each, with the drivers' environment and settings."""
    from spark_jobs.backends.warm.pool import WarmPool

    return WarmPool(
        workers=settings.warm_workers, master="local[1]",
        driver_memory=settings.warm_worker_memory, time_budget_s=settings.warm_time_budget_s,
        env=driver_environment(os.environ, driver_settings(settings)),
        log_dir=settings.data_dir / "warm-lane", nice=settings.warm_worker_nice,
    )


def warm_backend_for(settings: Settings) -> WarmBackend | None:
    """The warm lane the settings name: the ``avip warm`` service at ``warm_lane_url``, else
    workers of this process (``warm_workers``; 0: no warm lane). Not started yet."""
    if settings.warm_lane_url:
        from spark_jobs.backends.warm.service import RemoteWarmLane

        token = settings.warm_lane_token.get_secret_value() if settings.warm_lane_token else None
        return WarmBackend(RemoteWarmLane(settings.warm_lane_url, token))
    if settings.warm_workers < 1:
        return None
    return WarmBackend(warm_pool(settings))


def driver_settings(settings: Settings) -> dict[str, str]:
    """The ``AVIP_*`` settings a spark-submit driver reads (the runner's catalogue, cache
    and session), whether they came from the environment or a config file. The S3 keys go
    only to drivers whose catalogue is on S3; the store's URL and the Kafka and Zeppelin
    settings never do."""
    env = {
        "AVIP_DATA_DIR": str(settings.data_dir),
        "AVIP_JARS_DIR": str(settings.jars_dir),
        "AVIP_SPARK_DRIVER_MEMORY": settings.spark_driver_memory,
        "AVIP_SPARK_EXECUTOR_MEMORY": settings.spark_executor_memory,
        "AVIP_SPARK_SHUFFLE_PARTITIONS": str(settings.spark_shuffle_partitions),
    }
    if settings.lakehouse_uri:
        env["AVIP_LAKEHOUSE_URI"] = settings.lakehouse_uri
    if is_s3(settings.catalogue_root):
        s3 = {
            "AVIP_S3_ENDPOINT": settings.s3_endpoint,
            "AVIP_S3_REGION": settings.s3_region,
            "AVIP_S3_BUCKET": settings.s3_bucket,
            "AVIP_S3_ACCESS_KEY": settings.s3_access_key,
            "AVIP_S3_SECRET_KEY": (settings.s3_secret_key.get_secret_value()
                                   if settings.s3_secret_key else None),
        }
        env.update({k: v for k, v in s3.items() if v is not None})
    return env
