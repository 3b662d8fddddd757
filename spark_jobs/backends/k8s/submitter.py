"""The scheduler's Kubernetes backend: granted jobs become SparkApplications.

Process backends (:mod:`spark_jobs.backends.processes`) start a driver and the dispatcher
watches its pid and exit code. On Kubernetes there is no local process: the
dispatcher hands a granted job to :class:`KubernetesJobs`, which submits it
with :class:`spark_jobs.backends.k8s.application.KubernetesBackend` in the user's namespace,
then polls the application's status into platform states and cancels by
deleting the application.

A job whose pods do not fit what the user's namespace quota has left is not
submitted: :meth:`KubernetesJobs.submit` says why it must wait and the
dispatcher leaves it queued, with its queue position, to try again next tick.

The application's name (``avip-job-<id>``) is unique in the namespace, so a
dispatcher that stopped after submitting but before recording the job as
running finds the application on its next try and adopts it instead of
submitting twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from spark_jobs.backends.k8s.application import (
    GROUP,
    PLURAL,
    VERSION,
    K8sConfig,
    K8sJob,
    KubernetesBackend,
    NotSubmitted,
)
from spark_jobs.backends.k8s.quota import NamespaceBudget, PoolLike, SparkShape

if TYPE_CHECKING:
    from config.settings import Settings
    from spark_jobs.backends.processes import JobLaunch

log = logging.getLogger("avip.k8s")

#: KubernetesBackend.status states → job states the dispatcher records.
JOB_STATES = {"submitted": "running", "running": "running", "unknown": "running",
              "done": "succeeded", "failed": "failed"}


def _is_not_found(error: Exception) -> bool:
    return getattr(error, "status", None) == 404


class KubernetesJobs:
    """Submit, poll and cancel jobs as SparkApplications (the dispatcher's cluster backend)."""

    name = "kubernetes"

    def __init__(self, backend: KubernetesBackend) -> None:
        self.backend = backend

    @classmethod
    def from_settings(cls, settings: Settings) -> KubernetesJobs:
        """In-cluster credentials, or the kubeconfig named by ``k8s_kubeconfig``."""
        from kubernetes import client, config

        if settings.k8s_kubeconfig is not None:
            api_client = config.new_client_from_config(str(settings.k8s_kubeconfig))
        else:
            config.load_incluster_config()
            api_client = client.ApiClient()
        master = settings.spark_master if settings.spark_master.startswith("k8s://") else None
        k8s = K8sConfig(image=settings.k8s_image,
                        **({"master": master} if master else {}))  # type: ignore[arg-type]
        return cls(KubernetesBackend(api_client, k8s))

    @staticmethod
    def _ref(job_id: int, user: str) -> K8sJob:
        """Enough of a job to name its application and namespace (status and cancel)."""
        return K8sJob(job_id=job_id, user=user, avi="", params={},
                      shape=SparkShape(1, 1, 1, 1, executors=0))

    def submit(self, launch: JobLaunch, user: str, pool: PoolLike) -> str | None:
        """Submit the job; returns why it must stay queued, or None once submitted.

        Raises ``spark_jobs.backends.k8s.quota.QuotaError`` if the grant can never fit the
        namespace, and ``kubernetes`` API errors as they come.
        """
        job = K8sJob.from_launch(launch, user)
        try:
            self.backend.custom.get_namespaced_custom_object(
                GROUP, VERSION, job.namespace, PLURAL, job.name)
            log.info("job %s: application %s/%s exists already, adopted",
                     job.job_id, job.namespace, job.name)
            return None
        except Exception as error:  # noqa: BLE001 — only "not found" means: submit it
            if not _is_not_found(error):
                raise
        try:
            self.backend.submit(job, NamespaceBudget.from_pool(user, pool))
        except NotSubmitted as why:
            return str(why)
        return None

    def poll(self, job_id: int, user: str) -> tuple[str, str]:
        """(running | succeeded | failed, reason) from the application's status."""
        ref = self._ref(job_id, user)
        try:
            state, message = self.backend.status(ref)
        except Exception as error:  # noqa: BLE001
            if _is_not_found(error):
                return "failed", (f"the SparkApplication {ref.namespace}/{ref.name} was deleted "
                                  "outside the platform before it finished")
            raise
        to = JOB_STATES.get(state, "running")
        reason = f"the Spark application failed: {message}" if to == "failed" else ""
        return to, reason

    def cancel(self, job_id: int, user: str) -> None:
        """Delete the application (its pods go with it) and its params; gone already is fine."""
        ref = self._ref(job_id, user)
        calls: list[Any] = [
            lambda: self.backend.custom.delete_namespaced_custom_object(
                GROUP, VERSION, ref.namespace, PLURAL, ref.name),
            lambda: self.backend.core.delete_namespaced_config_map(
                f"{ref.name}-params", ref.namespace),
        ]
        for call in calls:
            try:
                call()
            except Exception as error:  # noqa: BLE001
                if not _is_not_found(error):
                    raise

