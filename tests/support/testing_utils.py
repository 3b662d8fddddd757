"""Helpers shared by test modules (importable because pytest puts tests/support on sys.path;
not tests/ itself, whose lakehouse/ folder would shadow the lakehouse package)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType


def load_module(name: str, path: Path) -> ModuleType:
    """Import the Python file at ``path`` as module ``name``.

    Test folders are not packages (pytest runs with ``--import-mode=importlib``), so a
    test that reuses another folder's cases or sky, or a benchmark script, loads it by path.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def new_user(client, operator: dict[str, str], name: str, roles: list[str] | None = None,
             groups: list[str] | None = None) -> dict[str, str]:
    """Create user ``name`` through the API (as ``operator``) and return their auth headers.

    ``client`` is anything with FastAPI's TestClient ``post`` (a TestClient, an httpx client).
    """
    r = client.post("/users", headers=operator,
                    json={"name": name, "roles": roles or ["scientist"], "groups": groups or []})
    assert r.status_code == 201, r.text
    r = client.post(f"/users/{name}/tokens", headers=operator, json={"label": "test"})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def submit_crossmatch(client, headers: dict[str, str], table_path: str,
                      radius_arcsec: float = 2.0,
                      gaia_columns: tuple[str, ...] = ("source_id",)):  # type: ignore[no-untyped-def]
    """POST /jobs for the bundled crossmatch AVI over an uploaded RAJ2000/DEJ2000 table."""
    return client.post("/jobs", headers=headers, json={"avi": "crossmatch", "params": {
        "table_path": table_path, "ra_column": "RAJ2000", "dec_column": "DEJ2000",
        "radius_arcsec": radius_arcsec, "gaia_columns": list(gaia_columns)}})


def launched_params(client, job_id: int) -> dict:  # type: ignore[no-untyped-def]
    """The params job ``job_id`` runs with, its file inputs resolved to local paths (the
    API shows file inputs as submitted), read from ``client``'s app's store."""
    from api.models import Job

    with client.app.state.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None, job_id
        return dict(job.params)


FIGURES_DIR = Path(__file__).resolve().parents[2] / "out" / "faults"


def write_figures(name: str, figures: dict) -> None:  # type: ignore[type-arg]
    """Keep a fault test's figures (``out/faults/<name>.json``) for docs/reliability.md."""
    import json

    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    (FIGURES_DIR / f"{name}.json").write_text(json.dumps(figures, indent=1, sort_keys=True))


def fuzz_operations(app, headers: dict[str, str], examples: int, check) -> tuple[list, int]:  # type: ignore[no-untyped-def]
    """schemathesis over every operation of ``app``'s OpenAPI document: ``examples``
    generated requests each (valid and invalid by the schema), sent with ``headers``;
    ``check(case, response)`` sees each answer. Returns (the operations, requests sent)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]
    sent = 0
    for operation in operations:
        strategy = (operation.as_strategy(GenerationMode.POSITIVE)
                    | operation.as_strategy(GenerationMode.NEGATIVE))

        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case) -> None:  # type: ignore[no-untyped-def]
            nonlocal sent
            response = case.call(headers={**(case.headers or {}), **headers})
            sent += 1
            check(case, response)

        run()
    return operations, sent


def wait_until_answers(url: str, process, timeout_s: float = 120.0,  # type: ignore[no-untyped-def]
                       why: str = "") -> None:
    """Poll ``url`` until it answers 200, failing (with ``why``: a log's tail) if the
    ``process`` serving it exits first or ``timeout_s`` passes."""
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert process.poll() is None, f"it exited before {url} answered. {why}"
        assert time.monotonic() < deadline, f"{url} did not answer in {timeout_s} s. {why}"
        time.sleep(0.3)


def free_port() -> int:
    """A free loopback TCP port (for a server a test starts)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_schema(base_url: str) -> tuple[str, Callable[[], None]]:
    """A new empty schema in the PostgreSQL at ``base_url``: (its SQLAlchemy URL, a function
    that drops it). Each test gets a store of its own on the devstack's server."""
    import uuid

    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-csearch_path%3D{schema}", drop


def kafka_auth(principal: str = "admin"):  # type: ignore[no-untyped-def]
    """The devstack broker's credentials of ``principal`` (admin: the super user the tests'
    own clients use; avip-relay, avip-stream: the services'), or None on an open broker."""
    import os

    from config.kafka import KafkaAuth

    if not os.environ.get("AVIP_TEST_KAFKA_USERNAME"):
        return None
    password = {"admin": "AVIP_TEST_KAFKA_PASSWORD",
                "avip-relay": "AVIP_TEST_KAFKA_RELAY_PASSWORD",
                "avip-stream": "AVIP_TEST_KAFKA_STREAM_PASSWORD"}[principal]
    return KafkaAuth(principal, os.environ[password])


def kafka_env(principal: str = "admin") -> dict[str, str]:
    """The AVIP_KAFKA_USERNAME/PASSWORD of ``principal`` for a process the test starts."""
    auth = kafka_auth(principal)
    return {} if auth is None else {"AVIP_KAFKA_USERNAME": auth.username,
                                    "AVIP_KAFKA_PASSWORD": auth.password}
