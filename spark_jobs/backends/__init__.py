"""The submitters that run AVI jobs on Spark, behind one protocol
(:class:`spark_jobs.backends.protocol.JobBackend`): spark-submit driver processes,
local or on a standalone cluster (:mod:`.processes`), and SparkApplications on
Kubernetes (:mod:`.k8s`). :func:`backend_for` picks the one the settings name.
"""

from __future__ import annotations

from config.settings import Settings
from spark_jobs.backends.k8s.submitter import KubernetesJobs
from spark_jobs.backends.processes import LocalBackend, StandaloneBackend
from spark_jobs.backends.protocol import JobBackend


def backend_for(settings: Settings) -> JobBackend:
    """The backend ``settings.job_backend`` names: local or standalone spark-submit drivers
    (with the platform's jars from ``jars_dir``), or SparkApplications on Kubernetes."""
    if settings.job_backend == "kubernetes":
        return KubernetesJobs.from_settings(settings)
    if settings.job_backend == "local":
        return LocalBackend(jars_dir=settings.jars_dir)
    if settings.job_backend == "standalone":
        return StandaloneBackend(settings.spark_master, jars_dir=settings.jars_dir)
    raise ValueError(
        f"job_backend {settings.job_backend!r} is not 'local', 'standalone' or 'kubernetes'"
    )
