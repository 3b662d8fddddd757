"""The Spark-on-Kubernetes backend: rendering (offline) and submission (fake API server)."""

from __future__ import annotations

import json

import pytest
from k8s_helpers import validate_object, validate_spark_application
from kubernetes.client.exceptions import ApiException

from spark_jobs.backends.k8s.application import (
    K8sConfig,
    K8sJob,
    KubernetesBackend,
    NotSubmitted,
    pod_template,
    quota_in_use,
    render_application,
    spark_submit_command,
)
from spark_jobs.backends.k8s.quota import NamespaceBudget, QuotaError, SparkShape, resource_quota
from spark_jobs.backends.protocol import JobLaunch

CONFIG = K8sConfig(image="registry.example/avip:1.0")
BUDGET = NamespaceBudget("alice", cores=8, memory_mb=32768, max_jobs=2)


def make_job(executors: int = 10, job_id: int = 42, user: str = "alice") -> K8sJob:
    return K8sJob(
        job_id=job_id,
        user=user,
        avi="cluster_finder",
        params={"ra": 10.5, "dec": -3.0},
        shape=SparkShape(1, 2048, 2, 4096, executors=executors),
        pins={"gaia_source": 3},
    )


def test_application_validates_against_the_spark_operator_schema():
    app = render_application(make_job(), BUDGET, CONFIG)
    validate_spark_application(app)
    assert app["metadata"]["namespace"] == "avip-u-alice"


def test_schema_check_catches_unknown_and_mistyped_fields():
    app = render_application(make_job(), BUDGET, CONFIG)
    app["spec"]["driver"]["cpus"] = 2
    with pytest.raises(ValueError, match="driver.cpus"):
        validate_spark_application(app)
    app = render_application(make_job(), BUDGET, CONFIG)
    app["spec"]["driver"]["cores"] = "one"
    with pytest.raises(ValueError):
        validate_spark_application(app)


def test_application_carries_the_grant_labels_and_queue():
    job = make_job(executors=10)
    spec = render_application(job, BUDGET, CONFIG)["spec"]
    # 8 cores: driver 1 + 3 executors of 2 cores; memory allows more, so cpu caps at 3.
    assert spec["dynamicAllocation"] == {
        "enabled": True,
        "initialExecutors": 1,
        "minExecutors": 0,
        "maxExecutors": 3,
    }
    assert spec["driver"]["coreLimit"] == "1000m" and spec["driver"]["memory"] == "2048m"
    assert spec["driver"]["memoryOverhead"] == "384m"
    assert spec["executor"]["cores"] == 2 and spec["executor"]["memory"] == "4096m"
    assert spec["executor"]["memoryOverhead"] == "410m"
    assert spec["batchScheduler"] == "yunikorn"
    assert spec["batchSchedulerOptions"] == {"queue": "root.avip.alice"}
    for role in ("driver", "executor"):
        labels = spec[role]["labels"]
        assert labels["avip.io/user"] == "alice" and labels["avip.io/job-id"] == "42"
        assert spec[role]["template"]["metadata"]["labels"]["avip.io/spark-role"] == role
    assert spec["arguments"] == [
        "--avi", "cluster_finder", "--params", "/etc/avip/job/params.json",
        "--output", "/space/jobs/42", "--job-id", "42", "--pin", "gaia_source=3",
    ]  # fmt: skip


def test_job_from_the_dispatchers_launch_record(tmp_path):
    launch = JobLaunch(
        job_id=7, avi="cluster_finder", avi_version="1.2.0", params={"ra": 1.0},
        output_dir=tmp_path, cores=5, memory_mb=10240,
        resources={"driver_cores": 1, "driver_memory_mb": 2048, "executor_cores": 2,
                   "executor_memory_mb": 4096, "executors": 2},
        pins={"gaia_source": 1},
    )  # fmt: skip
    job = K8sJob.from_launch(launch, user="alice")
    assert job.shape == SparkShape(1, 2048, 2, 4096, executors=2)
    assert job.runner_args()[:4] == ["--avi", "cluster_finder", "--avi-version", "1.2.0"]
    validate_spark_application(render_application(job, BUDGET, CONFIG))


def test_small_grants_are_not_raised_to_the_cap():
    spec = render_application(make_job(executors=2), BUDGET, CONFIG)["spec"]
    assert spec["dynamicAllocation"]["maxExecutors"] == 2


def test_a_job_that_can_never_fit_the_namespace_is_refused():
    tiny = NamespaceBudget("alice", cores=2, memory_mb=4096)
    with pytest.raises(QuotaError):
        render_application(make_job(), tiny, CONFIG)


def test_pod_templates_are_valid_pods():
    for role in ("driver", "executor"):
        validate_object(pod_template(make_job(), role, CONFIG))


def test_spark_submit_command_is_equivalent_to_the_application(tmp_path):
    job = make_job()
    argv = spark_submit_command(job, BUDGET, CONFIG, tmp_path)
    assert argv[:3] == ["spark-submit", "--master", "k8s://https://kubernetes.default.svc"]
    conf = dict(a.split("=", 1) for a in argv[argv.index("--deploy-mode") :] if "=" in a)
    spec = render_application(job, BUDGET, CONFIG)["spec"]
    assert conf["spark.kubernetes.namespace"] == "avip-u-alice"
    assert conf["spark.dynamicAllocation.maxExecutors"] == str(
        spec["dynamicAllocation"]["maxExecutors"]
    )
    assert conf["spark.executor.memory"] == spec["executor"]["memory"]
    assert conf["spark.executor.memoryOverhead"] == spec["executor"]["memoryOverhead"]
    assert conf["spark.kubernetes.executor.limit.cores"] == spec["executor"]["coreLimit"]
    assert conf["spark.kubernetes.driver.label.queue"] == "root.avip.alice"
    assert conf["spark.kubernetes.scheduler.name"] == "yunikorn"
    assert argv[-len(spec["arguments"]) :] == spec["arguments"]
    template = json.loads((tmp_path / "avip-job-42-driver.json").read_text())
    assert conf["spark.kubernetes.driver.podTemplateFile"] == str(
        tmp_path / "avip-job-42-driver.json"
    )
    validate_object(template)


def test_quota_in_use_reads_kubernetes_quantities():
    hard, used = quota_in_use(
        {"hard": {"limits.cpu": "8", "limits.memory": "32Gi"}, "used": {"limits.cpu": "2500m"}}
    )
    assert (hard.millicores, hard.memory_mb, used.millicores, used.memory_mb) == (
        8000,
        32768,
        2500,
        0,
    )


def _fake_namespace(fake, used_cpu: str = "0", used_mem: str = "0") -> None:
    hard = resource_quota(BUDGET)["spec"]["hard"]
    fake.add_namespace("avip-u-alice", hard, {"limits.cpu": used_cpu, "limits.memory": used_mem})


def test_fake_submit_creates_params_and_application_in_the_users_namespace(
    fake_apiserver, fake_api_client
):
    _fake_namespace(fake_apiserver)
    backend = KubernetesBackend(fake_api_client, CONFIG)
    backend.submit(make_job(), BUDGET)
    (app,) = fake_apiserver.of_kind("sparkapplications")
    (params,) = fake_apiserver.of_kind("configmaps")
    assert app["metadata"]["name"] == "avip-job-42"
    assert app["metadata"]["namespace"] == params["metadata"]["namespace"] == "avip-u-alice"
    assert json.loads(params["data"]["params.json"]) == {"dec": -3.0, "ra": 10.5}
    assert app == render_application(make_job(), BUDGET, CONFIG)


def test_fake_status_follows_the_application_state(fake_apiserver, fake_api_client):
    _fake_namespace(fake_apiserver)
    backend = KubernetesBackend(fake_api_client, CONFIG)
    job = make_job()
    backend.submit(job, BUDGET)
    assert backend.status(job) == ("submitted", "")
    stored = fake_apiserver.objects[("avip-u-alice", "sparkapplications", "avip-job-42")]
    stored["status"] = {"applicationState": {"state": "RUNNING"}}
    assert backend.status(job) == ("running", "RUNNING")
    stored["status"] = {"applicationState": {"state": "FAILED", "errorMessage": "driver OOM"}}
    assert backend.status(job) == ("failed", "driver OOM")
    stored["status"] = {"applicationState": {"state": "COMPLETED"}}
    assert backend.status(job)[0] == "done"


def test_fake_job_exceeding_what_the_quota_has_left_is_never_submitted(
    fake_apiserver, fake_api_client
):
    # Another job already holds 2 of 8 cores; ours needs 1 + 3 x 2 = 7 cores.
    _fake_namespace(fake_apiserver, used_cpu="2", used_mem="4Gi")
    backend = KubernetesBackend(fake_api_client, CONFIG)
    with pytest.raises(NotSubmitted, match="stays queued"):
        backend.submit(make_job(), BUDGET)
    assert fake_apiserver.of_kind("sparkapplications") == []
    assert fake_apiserver.of_kind("configmaps") == []
    # A smaller grant (1 + 2 x 2 = 5 cores) fits what is left and goes through.
    backend.submit(make_job(executors=2, job_id=43), BUDGET)
    assert len(fake_apiserver.of_kind("sparkapplications")) == 1


def test_fake_cancel_deletes_application_and_params(fake_apiserver, fake_api_client):
    _fake_namespace(fake_apiserver)
    backend = KubernetesBackend(fake_api_client, CONFIG)
    job = make_job()
    backend.submit(job, BUDGET)
    backend.cancel(job)
    assert fake_apiserver.of_kind("sparkapplications") == []
    assert fake_apiserver.of_kind("configmaps") == []


def test_fake_namespace_missing_gives_a_clear_api_error(fake_apiserver, fake_api_client):
    backend = KubernetesBackend(fake_api_client, CONFIG)
    with pytest.raises(ApiException) as err:
        backend.submit(make_job(user="nobody"), NamespaceBudget("nobody", 8, 32768))
    assert err.value.status == 404
    assert fake_apiserver.of_kind("sparkapplications") == []
