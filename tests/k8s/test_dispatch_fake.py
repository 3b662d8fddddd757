"""The scheduler loop on the kubernetes backend, against the fake API server.

A real job store (SQLite) and the real dispatcher; only the cluster is the
fake API server of k8s_helpers.py. The cluster's side of each story (the
spark-operator moving an application through its states, another job holding
quota) is played by editing what the fake server stores.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from k8s_helpers import FakeApiServer, validate_spark_application
from sqlalchemy import select

from api.db import make_engine, migrate, session_factory
from api.models import Event, Job
from api.scheduling.dispatcher import Dispatcher
from api.scheduling.drf import Capacity
from api.scheduling.pools import quota_for
from api.store import jobs as job_store
from api.store import users as user_store
from spark_jobs.backends.k8s.application import K8sConfig, KubernetesBackend
from spark_jobs.backends.k8s.quota import NamespaceBudget, resource_quota
from spark_jobs.backends.k8s.submitter import KubernetesJobs

NS = "avip-u-alice"
#: 1 driver core + 2 executors x 2 cores = 5 of the scientist pool's 8 cores.
GRANT = {"driver_cores": 1, "driver_memory_mb": 2048, "executor_cores": 2,
         "executor_memory_mb": 4096, "executors": 2}


class Cluster:
    """The fake API server with alice's namespace, and the dispatcher and store using it."""

    def __init__(self, fake: FakeApiServer, api_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
        self.fake, self.tmp_path = fake, tmp_path
        budget = NamespaceBudget.from_pool("alice", quota_for(["scientist"]).pool)
        self.hard = resource_quota(budget)["spec"]["hard"]
        fake.add_namespace(NS, self.hard, {"limits.cpu": "0", "limits.memory": "0"})
        engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
        migrate(engine)
        self.sessions = session_factory(engine)
        with self.sessions() as s:
            user_store.create_user(s, name="alice", roles=["scientist"])
            s.commit()
        self.backend = KubernetesJobs(KubernetesBackend(api_client, K8sConfig(image="avip:test")))
        self.dispatcher = self.restarted()

    def restarted(self) -> Dispatcher:
        return Dispatcher(sessions=self.sessions, backend=self.backend,
                          capacity=Capacity(cores=64, memory_mb=131072))

    def submit(self) -> int:
        with self.sessions() as s:
            owner = user_store.get_user(s, name="alice")
            job = job_store.create_job(s, owner=owner, avi="cluster_finder", avi_version="1.0",
                                       params={"ra": 1.0}, cores=5, memory_mb=10240)
            job.resources, job.output_dir = GRANT, str(self.tmp_path / f"job{job.id}")
            s.commit()
            return job.id

    def job(self, job_id: int) -> Job:
        with self.sessions() as s:
            job = s.get(Job, job_id)
            assert job is not None
            return job

    def events(self, job_id: int) -> list[str]:
        with self.sessions() as s:
            rows = s.scalars(select(Event).where(Event.job_id == job_id).order_by(Event.id))
            return [e.type for e in rows]

    def app(self, job_id: int) -> dict | None:  # type: ignore[type-arg]
        return self.fake.objects.get((NS, "sparkapplications", f"avip-job-{job_id}"))

    def operator_sets(self, job_id: int, state: str, message: str = "") -> None:
        app = self.app(job_id)
        assert app is not None
        app["status"] = {"applicationState": {"state": state, "errorMessage": message}}

    def quota_used(self, cpu: str, memory: str) -> None:
        quota = self.fake.objects[(NS, "resourcequotas", "avip-pool")]
        quota["status"]["used"] = {"limits.cpu": cpu, "limits.memory": memory}


@pytest.fixture
def cluster(fake_apiserver, fake_api_client, tmp_path: Path) -> Cluster:  # type: ignore[no-untyped-def]
    return Cluster(fake_apiserver, fake_api_client, tmp_path)


def test_fake_cluster_job_is_submitted_polled_and_succeeds(cluster: Cluster) -> None:
    job_id = cluster.submit()
    assert cluster.dispatcher.tick().started == [job_id]
    job = cluster.job(job_id)
    assert (job.state, job.backend, job.driver_pid) == ("running", "kubernetes", None)
    app = cluster.app(job_id)
    assert app is not None
    validate_spark_application(app)
    assert app["spec"]["dynamicAllocation"]["maxExecutors"] == 2
    assert app["spec"]["executor"]["memory"] == "4096m"
    assert app["metadata"]["labels"]["avip.io/job-id"] == str(job_id)
    for state in ("SUBMITTED", "RUNNING", "SUCCEEDING"):
        cluster.operator_sets(job_id, state)
        assert cluster.dispatcher.tick().finished == []
        assert cluster.job(job_id).state == "running"
    cluster.operator_sets(job_id, "COMPLETED")
    assert cluster.dispatcher.tick().finished == [job_id]
    assert cluster.job(job_id).state == "succeeded"
    assert cluster.events(job_id) == ["job.queued", "job.running", "job.succeeded"]
    assert cluster.dispatcher.tick().started == []  # never submitted twice


def test_fake_cluster_failure_carries_the_operators_reason(cluster: Cluster) -> None:
    job_id = cluster.submit()
    cluster.dispatcher.tick()
    cluster.operator_sets(job_id, "FAILED", "driver container OOMKilled")
    assert cluster.dispatcher.tick().finished == [job_id]
    job = cluster.job(job_id)
    assert job.state == "failed" and "driver container OOMKilled" in (job.reason or "")


def test_fake_cluster_job_over_the_namespace_quota_waits_queued_with_its_position(
    cluster: Cluster,
) -> None:
    cluster.quota_used("4", "8Gi")  # another application holds 4 of the 8 cores
    first, second = cluster.submit(), cluster.submit()
    for _ in range(2):
        assert cluster.dispatcher.tick().started == []
    assert [cluster.job(i).state for i in (first, second)] == ["queued", "queued"]
    assert cluster.dispatcher.positions == {first: 1, second: 2}
    assert "stays queued" in cluster.dispatcher.waiting[first]
    assert cluster.fake.of_kind("sparkapplications") == []
    assert cluster.fake.of_kind("configmaps") == []
    assert cluster.events(first) == ["job.queued"]
    cluster.quota_used("0", "0")  # the other application finished
    assert cluster.dispatcher.tick().started == [first]  # 5 cores: the second still waits
    assert cluster.job(second).state == "queued"


def test_fake_cluster_job_that_can_never_fit_fails_with_why(cluster: Cluster) -> None:
    job_id = cluster.submit()
    with cluster.sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None
        job.resources = {**GRANT, "driver_cores": 16}  # more than the namespace's 8 cores
        s.commit()
    cluster.dispatcher.tick()
    job = cluster.job(job_id)
    assert job.state == "failed" and "could not submit" in (job.reason or "")
    assert cluster.fake.of_kind("sparkapplications") == []


def test_fake_cluster_cancel_deletes_the_application(cluster: Cluster) -> None:
    job_id = cluster.submit()
    cluster.dispatcher.tick()
    cluster.operator_sets(job_id, "RUNNING")
    with cluster.sessions() as s:
        s.get(Job, job_id).cancel_requested = True  # type: ignore[union-attr]
        s.commit()
    assert cluster.dispatcher.tick().finished == [job_id]
    assert cluster.job(job_id).state == "cancelled"
    assert cluster.fake.of_kind("sparkapplications") == []
    assert cluster.fake.of_kind("configmaps") == []


def test_fake_cluster_jobs_are_adopted_after_a_restart(cluster: Cluster) -> None:
    job_id = cluster.submit()
    cluster.dispatcher.tick()
    restarted = cluster.restarted()
    assert restarted.recover() == []  # running on the cluster: adopted, not failed
    assert cluster.job(job_id).state == "running"
    assert restarted.tick().started == []
    cluster.operator_sets(job_id, "COMPLETED")
    assert restarted.tick().finished == [job_id]


class Stopped(Exception):
    """The dispatcher's process ends here."""


def test_fake_cluster_submitted_but_unclaimed_job_is_adopted_not_resubmitted(
    cluster: Cluster,
) -> None:
    # A dispatcher that stopped between submitting and recording "running".
    job_id = cluster.submit()
    with cluster.sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None
        launch = cluster.dispatcher._launch(job)

    def stopped_before_claiming() -> bool:
        raise Stopped

    with pytest.raises(Stopped):
        cluster.backend.submit(launch, "alice", quota_for(["scientist"]).pool,
                               stopped_before_claiming)
    assert len(cluster.fake.of_kind("sparkapplications")) == 1
    assert cluster.job(job_id).state == "queued"
    cluster.quota_used(cluster.hard["limits.cpu"], cluster.hard["limits.memory"])  # it holds all
    assert cluster.dispatcher.tick().started == [job_id]
    assert len(cluster.fake.of_kind("sparkapplications")) == 1


def test_fake_cluster_application_deleted_outside_fails_the_job(cluster: Cluster) -> None:
    job_id = cluster.submit()
    cluster.dispatcher.tick()
    cluster.fake.objects.pop((NS, "sparkapplications", f"avip-job-{job_id}"))
    assert cluster.dispatcher.tick().finished == [job_id]
    job = cluster.job(job_id)
    assert job.state == "failed" and "deleted outside the platform" in (job.reason or "")


def test_fake_cluster_job_cancelled_while_being_submitted_leaves_nothing(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The owner cancels after the application was created, before the dispatcher claims it.
    job_id = cluster.submit()
    submit = cluster.backend.submit

    def cancel_then_submit(launch, user, pool, claim):  # type: ignore[no-untyped-def]
        def cancelled_first() -> bool:
            assert len(cluster.fake.of_kind("sparkapplications")) == 1
            with cluster.sessions() as s:
                job = s.get(Job, job_id)
                assert job is not None
                job_store.transition(s, job=job, to="cancelled", reason="cancelled by its owner")
                s.commit()
            return claim()

        return submit(launch, user, pool, cancelled_first)

    monkeypatch.setattr(cluster.backend, "submit", cancel_then_submit)
    assert cluster.dispatcher.tick().started == []
    assert cluster.job(job_id).state == "cancelled"
    assert cluster.fake.of_kind("sparkapplications") == []
    assert cluster.fake.of_kind("configmaps") == []


def test_fake_cluster_application_that_finished_while_the_service_was_down_is_settled(
    cluster: Cluster,
) -> None:
    job_id = cluster.submit()
    cluster.dispatcher.tick()
    cluster.operator_sets(job_id, "FAILED", "executor lost")
    assert cluster.restarted().recover() == [job_id]
    job = cluster.job(job_id)
    assert job.state == "failed" and "executor lost" in (job.reason or "")


def test_a_job_started_on_another_backend_is_failed_with_why(cluster: Cluster) -> None:
    job_id = cluster.submit()
    with cluster.sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None
        job_store.transition(s, job=job, to="running", backend="local", driver_pid=999999)
        s.commit()
    assert cluster.restarted().recover() == [job_id]
    job = cluster.job(job_id)
    assert job.state == "failed" and "started on the local backend" in (job.reason or "")
