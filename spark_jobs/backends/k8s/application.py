"""Spark-on-Kubernetes backend: one SparkApplication per granted job.

For a job the scheduler has granted, this module renders a Kubeflow
spark-operator ``v1beta2`` ``SparkApplication`` in the user's namespace (and,
for operators without the operator, the equivalent ``spark-submit --master
k8s://`` command), submits it through the official ``kubernetes`` Python
client, and maps its ``status.applicationState`` back to a job state.

Quotas are enforced three times, from the same numbers (:mod:`spark_jobs.backends.k8s.quota`):
the scheduler grants within the user's pool; this backend caps
``dynamicAllocation.maxExecutors`` and refuses to submit a job whose pods do
not fit what the namespace's ``ResourceQuota`` has left (the job stays queued);
and Kubernetes/YuniKorn refuse or queue any pod beyond the quota anyway.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spark_jobs.backends.k8s.quota import (
    Footprint,
    NamespaceBudget,
    QuotaError,
    SparkShape,
    cpu,
    max_executors,
    memory_overhead_mb,
    namespace_for,
    queue_for,
)
from spark_jobs.backends.protocol import JobLaunch

GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
DRIVER_SERVICE_ACCOUNT = "spark-driver"
#: In each user namespace (``avip k8s users``): the drivers' settings, and the user's own
#: S3 keys (scoped to their prefix; created by the operator, docs/deploy.md).
DRIVER_SETTINGS, DRIVER_S3_SECRET = "avip-driver-settings", "avip-s3"
#: The Spark UI port, where the PrometheusServlet sink serves the driver's metrics and
#: ``spark.ui.prometheus.enabled`` the executors' (executors serve no HTTP themselves).
DRIVER_UI_PORT = 4040
QUOTA_NAME = "avip-pool"
JOB_MOUNT = "/etc/avip/job"
SPACE_MOUNT = "/space"
RUNNER_FILE = "local:///opt/avip/spark_jobs/runner.py"
LABEL_USER, LABEL_JOB, LABEL_AVI = "avip.io/user", "avip.io/job-id", "avip.io/avi"

#: spark-operator application states → platform job states.
STATES = {
    "": "submitted",
    "NEW": "submitted",
    "SUBMITTED": "submitted",
    "PENDING_RERUN": "submitted",
    "INVALIDATING": "submitted",
    "RUNNING": "running",
    "SUCCEEDING": "running",
    "FAILING": "running",
    "COMPLETED": "done",
    "FAILED": "failed",
    "SUBMISSION_FAILED": "failed",
    "UNKNOWN": "unknown",
}


class NotSubmitted(QuotaError):
    """The job does not fit the namespace's remaining quota now; it stays queued."""


@dataclass(frozen=True)
class K8sConfig:
    """Cluster-side choices, from the settings object (see docs/deploy.md)."""

    image: str = "avip/platform:0.1.0"
    master: str = "k8s://https://kubernetes.default.svc"
    spark_version: str = "4.0.1"
    scheduler_name: str = "yunikorn"
    settings_configmap: str = DRIVER_SETTINGS
    s3_secret: str = DRIVER_S3_SECRET
    ttl_seconds: int = 3600


@dataclass(frozen=True)
class K8sJob:
    """One granted job, as the backend needs it."""

    job_id: int | str
    user: str
    avi: str
    params: Mapping[str, Any]
    shape: SparkShape
    avi_version: str | None = None
    pins: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_launch(cls, launch: JobLaunch, user: str) -> K8sJob:
        """From the dispatcher's launch record (the grant is in ``resources``)."""
        res = launch.resources
        shape = SparkShape(
            driver_cores=float(res.get("driver_cores", 1)),
            driver_memory_mb=int(res.get("driver_memory_mb", 1024)),
            executor_cores=float(res.get("executor_cores", 1)),
            executor_memory_mb=int(res.get("executor_memory_mb", 1024)),
            executors=int(res.get("executors", 1)),
        )
        return cls(
            job_id=launch.job_id,
            user=user,
            avi=launch.avi,
            avi_version=launch.avi_version,
            params=launch.params,
            shape=shape,
            pins=dict(launch.pins),
        )

    @property
    def name(self) -> str:
        return f"avip-job-{self.job_id}"

    @property
    def namespace(self) -> str:
        return namespace_for(self.user)

    @property
    def labels(self) -> dict[str, str]:
        return {
            LABEL_USER: self.namespace.removeprefix("avip-u-"),
            LABEL_JOB: str(self.job_id),
            LABEL_AVI: self.avi,
            "queue": queue_for(self.user),
        }

    def runner_args(self) -> list[str]:
        args = ["--avi", self.avi]
        if self.avi_version:
            args += ["--avi-version", self.avi_version]
        args += ["--params", f"{JOB_MOUNT}/params.json"]
        args += ["--output", f"{SPACE_MOUNT}/jobs/{self.job_id}", "--job-id", str(self.job_id)]
        for table, version in sorted(self.pins.items()):
            args += ["--pin", f"{table}={version}"]
        return args


def params_configmap(job: K8sJob) -> dict[str, Any]:
    """The job's parameters, mounted read-only into the driver at ``/etc/avip/job``."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{job.name}-params",
            "namespace": job.namespace,
            "labels": job.labels,
        },
        "data": {"params.json": json.dumps(dict(job.params), sort_keys=True)},
    }


def pod_template(job: K8sJob, role: str, config: K8sConfig) -> dict[str, Any]:
    """Pod template for the driver or executors: security, settings, mounts, scrape hints.

    Spark fills in the container's image, command and resources; the template
    adds what Spark's own options cannot express.
    """
    volumes: list[dict[str, Any]] = [
        {"name": "space", "persistentVolumeClaim": {"claimName": "avip-space"}}
    ]
    mounts: list[dict[str, Any]] = [{"name": "space", "mountPath": SPACE_MOUNT}]
    if role == "driver":
        volumes.append({"name": "job", "configMap": {"name": f"{job.name}-params"}})
        mounts.append({"name": "job", "mountPath": JOB_MOUNT, "readOnly": True})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "labels": {**job.labels, "avip.io/spark-role": role},
            # Only the driver serves metrics (its own and, on another path, its executors').
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(DRIVER_UI_PORT),
                "prometheus.io/path": "/metrics/prometheus",
            } if role == "driver" else {"prometheus.io/scrape": "false"},
        },
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 185, "fsGroup": 185,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "automountServiceAccountToken": role == "driver",
            "volumes": volumes,
            "containers": [
                {
                    "name": f"spark-kubernetes-{role}",
                    "envFrom": [
                        {"configMapRef": {"name": config.settings_configmap}},
                        {"secretRef": {"name": config.s3_secret}},
                    ],
                    "volumeMounts": mounts,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def spark_conf(job: K8sJob, budget: NamespaceBudget, config: K8sConfig) -> dict[str, str]:
    """Spark properties shared by the SparkApplication and the spark-submit command."""
    shape, n_max = job.shape, max_executors(budget, job.shape)
    conf = {
        "spark.kubernetes.namespace": job.namespace,
        "spark.kubernetes.container.image": config.image,
        "spark.kubernetes.authenticate.driver.serviceAccountName": DRIVER_SERVICE_ACCOUNT,
        "spark.kubernetes.scheduler.name": config.scheduler_name,
        "spark.driver.cores": str(max(1, int(shape.driver_cores))),
        "spark.kubernetes.driver.request.cores": cpu(shape.driver_pod.millicores),
        "spark.kubernetes.driver.limit.cores": cpu(shape.driver_pod.millicores),
        "spark.driver.memory": f"{shape.driver_memory_mb}m",
        "spark.driver.memoryOverhead": f"{memory_overhead_mb(shape.driver_memory_mb)}m",
        "spark.executor.cores": str(max(1, int(shape.executor_cores))),
        "spark.kubernetes.executor.request.cores": cpu(shape.executor_pod.millicores),
        "spark.kubernetes.executor.limit.cores": cpu(shape.executor_pod.millicores),
        "spark.executor.memory": f"{shape.executor_memory_mb}m",
        "spark.executor.memoryOverhead": f"{memory_overhead_mb(shape.executor_memory_mb)}m",
        "spark.dynamicAllocation.enabled": "true",
        "spark.dynamicAllocation.shuffleTracking.enabled": "true",
        "spark.dynamicAllocation.minExecutors": "0",
        "spark.dynamicAllocation.initialExecutors": str(min(1, n_max)),
        "spark.dynamicAllocation.maxExecutors": str(n_max),
        "spark.ui.port": str(DRIVER_UI_PORT),
        "spark.ui.prometheus.enabled": "true",
        "spark.metrics.conf.*.sink.prometheusServlet.class":
            "org.apache.spark.metrics.sink.PrometheusServlet",
        "spark.metrics.conf.*.sink.prometheusServlet.path": "/metrics/prometheus",
        "spark.kubernetes.driver.annotation.yunikorn.apache.org/app-id": "{{APP_ID}}",
        "spark.kubernetes.executor.annotation.yunikorn.apache.org/app-id": "{{APP_ID}}",
    }
    for role in ("driver", "executor"):
        for key, value in job.labels.items():
            conf[f"spark.kubernetes.{role}.label.{key}"] = value
    return conf


def render_application(job: K8sJob, budget: NamespaceBudget, config: K8sConfig) -> dict[str, Any]:
    """The ``SparkApplication`` for a granted job (raises QuotaError if it can never fit)."""
    conf = spark_conf(job, budget, config)
    shape, n_max = job.shape, int(conf["spark.dynamicAllocation.maxExecutors"])

    def role_spec(role: str, cores: float, heap_mb: int) -> dict[str, Any]:
        millis = cpu(int(round(cores * 1000)))
        spec: dict[str, Any] = {
            "cores": max(1, int(cores)),
            "coreRequest": millis,
            "coreLimit": millis,
            "memory": f"{heap_mb}m",
            "memoryOverhead": f"{memory_overhead_mb(heap_mb)}m",
            "labels": dict(job.labels),
            "template": {
                k: v
                for k, v in pod_template(job, role, config).items()
                if k in ("metadata", "spec")
            },
        }
        if role == "driver":
            spec["serviceAccount"] = DRIVER_SERVICE_ACCOUNT
        return spec

    executor = role_spec("executor", shape.executor_cores, shape.executor_memory_mb)
    executor["instances"] = min(1, n_max)
    passthrough = {
        k: v
        for k, v in conf.items()
        if k.startswith(
            ("spark.kubernetes.driver.annotation", "spark.kubernetes.executor.annotation",
             "spark.metrics.conf.", "spark.ui.")
        )
        or k == "spark.dynamicAllocation.shuffleTracking.enabled"
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SparkApplication",
        "metadata": {"name": job.name, "namespace": job.namespace, "labels": dict(job.labels)},
        "spec": {
            "type": "Python",
            "pythonVersion": "3",
            "mode": "cluster",
            "image": config.image,
            "imagePullPolicy": "IfNotPresent",
            "mainApplicationFile": RUNNER_FILE,
            "arguments": job.runner_args(),
            "sparkVersion": config.spark_version,
            "sparkConf": passthrough,
            "restartPolicy": {"type": "Never"},
            "timeToLiveSeconds": config.ttl_seconds,
            "batchScheduler": config.scheduler_name,
            "batchSchedulerOptions": {"queue": queue_for(job.user)},
            "dynamicAllocation": {
                "enabled": True,
                "initialExecutors": min(1, n_max),
                "minExecutors": 0,
                "maxExecutors": n_max,
            },
            "driver": role_spec("driver", shape.driver_cores, shape.driver_memory_mb),
            "executor": executor,
        },
    }


def spark_submit_command(
    job: K8sJob, budget: NamespaceBudget, config: K8sConfig, template_dir: Path
) -> list[str]:
    """The equivalent ``spark-submit`` argv; pod templates are written into ``template_dir``."""
    conf = spark_conf(job, budget, config)
    template_dir.mkdir(parents=True, exist_ok=True)
    for role in ("driver", "executor"):
        path = template_dir / f"{job.name}-{role}.json"
        path.write_text(json.dumps(pod_template(job, role, config), indent=2))
        conf[f"spark.kubernetes.{role}.podTemplateFile"] = str(path)
    argv = [
        "spark-submit",
        "--master",
        config.master,
        "--deploy-mode",
        "cluster",
        "--name",
        job.name,
    ]
    for key in sorted(conf):
        argv += ["--conf", f"{key}={conf[key]}"]
    return argv + [RUNNER_FILE, *job.runner_args()]


def quota_in_use(quota_status: Mapping[str, Any]) -> tuple[Footprint, Footprint]:
    """(hard, used) CPU/memory from a ResourceQuota's ``status`` (limits, as Spark sets them)."""
    # The kubernetes package loads its whole client (~2 s) on import: only code that talks to a
    # cluster imports it, so `avip k8s` and an API on the process backends never pay for it.
    from kubernetes.utils import parse_quantity

    def footprint(values: Mapping[str, str]) -> Footprint:
        return Footprint(
            millicores=int(round(parse_quantity(values.get("limits.cpu", "0")) * 1000)),
            memory_mb=int(parse_quantity(values.get("limits.memory", "0")) // 2**20),
            pods=int(parse_quantity(values.get("pods", "0"))),
        )

    return footprint(quota_status.get("hard") or {}), footprint(quota_status.get("used") or {})


def granted_footprint(job: K8sJob, app: Mapping[str, Any]) -> Footprint:
    """Driver plus ``maxExecutors`` executors: all the pods the application may hold."""
    shape = job.shape
    n_max = app["spec"]["dynamicAllocation"]["maxExecutors"]
    return SparkShape(
        shape.driver_cores,
        shape.driver_memory_mb,
        shape.executor_cores,
        shape.executor_memory_mb,
        n_max,
    ).footprint


class KubernetesBackend:
    """Submits granted jobs as SparkApplications through the ``kubernetes`` client.

    ``api_client`` is a ``kubernetes.client.ApiClient`` (from the in-cluster or
    kubeconfig configuration — or pointed at a fake API server in tests).
    """

    def __init__(self, api_client: Any, config: K8sConfig | None = None) -> None:
        from kubernetes import client  # ~2 s to import: see quota_in_use

        self.config = config or K8sConfig()
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def remaining(self, namespace: str) -> Footprint:
        """What the namespace's ResourceQuota has left (from the API server's status)."""
        quota = self.core.read_namespaced_resource_quota(QUOTA_NAME, namespace)
        status = quota.to_dict().get("status") or {}
        hard, used = quota_in_use(status)
        return Footprint(hard.millicores - used.millicores, hard.memory_mb - used.memory_mb)

    def submit(self, job: K8sJob, budget: NamespaceBudget) -> dict[str, Any]:
        """Create the params ConfigMap and the SparkApplication; return the application.

        Raises
        ------
        QuotaError
            The job can never fit the user's namespace (refuse it).
        NotSubmitted
            It does not fit what the namespace has left now; nothing was created.
        """
        app = render_application(job, budget, self.config)
        grant = granted_footprint(job, app)
        left = self.remaining(job.namespace)
        if grant.millicores > left.millicores or grant.memory_mb > left.memory_mb:
            raise NotSubmitted(
                f"job {job.job_id} needs {grant.millicores}m CPU and {grant.memory_mb} MiB with "
                f"all its executors, but namespace {job.namespace} has {left.millicores}m and "
                f"{left.memory_mb} MiB left; it stays queued"
            )
        self.core.create_namespaced_config_map(job.namespace, params_configmap(job))
        return self.custom.create_namespaced_custom_object(
            GROUP, VERSION, job.namespace, PLURAL, app
        )

    def status(self, job: K8sJob) -> tuple[str, str]:
        """(platform state, message) from the SparkApplication's ``status.applicationState``."""
        app = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, job.namespace, PLURAL, job.name
        )
        state = (app.get("status") or {}).get("applicationState") or {}
        raw = state.get("state", "")
        return STATES.get(raw, "unknown"), state.get("errorMessage", "") or raw

    def cancel(self, job: K8sJob) -> None:
        """Delete the application (the operator removes its pods) and its params."""
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, job.namespace, PLURAL, job.name)
        self.core.delete_namespaced_config_map(f"{job.name}-params", job.namespace)
