"""The scheduler's Kubernetes backend: granted jobs become SparkApplications.

:class:`KubernetesJobs` speaks the dispatcher's one protocol
(:class:`spark_jobs.backends.protocol.JobBackend`): it submits a granted job
with :class:`spark_jobs.backends.k8s.application.KubernetesBackend` in the
user's namespace, polls the application's status into platform states, cancels
by deleting the application, and adopts a running job after a restart by its
application's name.

A job whose pods do not fit what the user's namespace quota has left is not
submitted: :meth:`KubernetesJobs.submit` says why it must wait and the
dispatcher leaves it queued, with its queue position, to try again next tick.

The application's name (``avip-job-<id>``) is unique in the namespace, so the
job is submitted *before* it is claimed, and a dispatcher that stopped after
submitting but before claiming finds the application on its next try and
adopts it instead of submitting twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from config.settings import Settings
from spark_jobs.backends.k8s.application import (
    GROUP,
    PLURAL,
    VERSION,
    K8sConfig,
    K8sJob,
    KubernetesBackend,
    NotSubmitted,
)
from spark_jobs.backends.k8s.quota import NamespaceBudget, SparkShape
from spark_jobs.backends.protocol import (
    LOST,
    JobLaunch,
    JobRef,
    PoolLike,
    State,
    Status,
    Submission,
    SubmitError,
    started,
    waiting,
)

log = logging.getLogger("avip.k8s")

#: KubernetesBackend.status states → job states the dispatcher records.
JOB_STATES: dict[str, State] = {"submitted": "running", "running": "running",
                                "unknown": "running", "done": "succeeded", "failed": "failed"}


def _is_not_found(error: Exception) -> bool:
    return getattr(error, "status", None) == 404


class KubernetesJobs:
    """Submit, poll, cancel and adopt jobs as SparkApplications."""

    name = "kubernetes"

    def __init__(self, backend: KubernetesBackend) -> None:
        self.backend = backend

    @classmethod
    def from_settings(cls, settings: Settings) -> KubernetesJobs:
        """In-cluster credentials, or the kubeconfig named by ``k8s_kubeconfig``."""
        # ~2 s to import (the whole client): only an API that runs jobs on Kubernetes pays it.
        from kubernetes import client, config

        if settings.k8s_kubeconfig is not None:
            api_client = config.new_client_from_config(str(settings.k8s_kubeconfig))
        else:
            config.load_incluster_config()
            api_client = client.ApiClient()
        k8s = K8sConfig(image=settings.k8s_image)
        if settings.spark_master.startswith("k8s://"):
            k8s = replace(k8s, master=settings.spark_master)
        return cls(KubernetesBackend(api_client, k8s))

    @staticmethod
    def _ref(job_id: int, user: str) -> K8sJob:
        """Enough of a job to name its application and namespace (status and cancel)."""
        return K8sJob(job_id=job_id, user=user, avi="", params={},
                      shape=SparkShape(1, 1, 1, 1, executors=0))

    def submit(self, launch: JobLaunch, user: str, pool: PoolLike,
               claim: Callable[[], bool]) -> Submission:
        """Submit the application, then claim the job; a job that does not fit what the
        namespace has left waits, unclaimed, and nothing is created for it.

        Raises :class:`SubmitError` if the grant can never fit the namespace (a
        ``QuotaError``) or the API server refuses the application.
        """
        job = K8sJob.from_launch(launch, user)
        try:
            self._create(job, pool)
        except NotSubmitted as why:
            return waiting(str(why))
        except Exception as error:  # noqa: BLE001 — a submission error fails the job, with why
            raise SubmitError(f"could not submit the Spark application: {error}") from error
        return started() if claim() else LOST

    def _create(self, job: K8sJob, pool: PoolLike) -> None:
        """Create the application, or adopt the one a previous submission left."""
        try:
            self.backend.custom.get_namespaced_custom_object(
                GROUP, VERSION, job.namespace, PLURAL, job.name)
            log.info("job %s: application %s/%s exists already, adopted",
                     job.job_id, job.namespace, job.name)
            return
        except Exception as error:  # noqa: BLE001 — only "not found" means: submit it
            if not _is_not_found(error):
                raise
        self.backend.submit(job, NamespaceBudget.from_pool(job.user, pool))

    def poll(self, ref: JobRef) -> Status:
        """Running, succeeded or failed from the application's status."""
        app = self._ref(ref.job_id, ref.user)
        try:
            state, message = self.backend.status(app)
        except Exception as error:  # noqa: BLE001
            if _is_not_found(error):
                return Status("failed", f"the SparkApplication {app.namespace}/{app.name} was "
                                        "deleted outside the platform before it finished")
            raise
        to = JOB_STATES.get(state, "running")
        return Status(to, f"the Spark application failed: {message}" if to == "failed" else "")

    def adopt(self, ref: JobRef) -> Status:
        """Found again by its application's name: its status now (finished while the service
        was down, deleted meanwhile, or still running: watched again)."""
        status = self.poll(ref)
        if not status.finished:
            log.info("job %s: on the cluster, adopted", ref.job_id)
        return status

    def cancel(self, ref: JobRef) -> None:
        """Delete the application (its pods go with it) and its params; gone already is fine."""
        app = self._ref(ref.job_id, ref.user)
        calls: list[Any] = [
            lambda: self.backend.custom.delete_namespaced_custom_object(
                GROUP, VERSION, app.namespace, PLURAL, app.name),
            lambda: self.backend.core.delete_namespaced_config_map(
                f"{app.name}-params", app.namespace),
        ]
        for call in calls:
            try:
                call()
            except Exception as error:  # noqa: BLE001
                if not _is_not_found(error):
                    raise
