"""Shared helpers for the k8s tests: offline schema validation and a fake API server.

There is no Kubernetes cluster on this machine, so submission tests talk to
:class:`FakeApiServer` — a small HTTP server on loopback speaking the few
Kubernetes REST paths the backend uses. It validates SparkApplications with
the spark-operator's own API models (as the CRD's schema would) and keeps
what it is sent so tests can look. Tests using it have "fake" in their names.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubeflow_spark_api.models.spark_v1beta2_spark_application import (
    SparkV1beta2SparkApplication,
)

K8S_VERSION = "1.32"


def unknown_keys(sent: Any, kept: Any, path: str = "") -> list[str]:
    """Keys in ``sent`` that the typed model dropped (i.e. not in the schema)."""
    if isinstance(sent, dict) and isinstance(kept, dict):
        out = []
        for key, value in sent.items():
            if key not in kept:
                out.append(f"{path}.{key}")
            else:
                out += unknown_keys(value, kept[key], f"{path}.{key}")
        return out
    if isinstance(sent, list) and isinstance(kept, list):
        return [
            p
            for i, (a, b) in enumerate(zip(sent, kept, strict=False))
            for p in unknown_keys(a, b, f"{path}[{i}]")
        ]
    return []


def validate_spark_application(obj: dict[str, Any]) -> None:
    """Check against the spark-operator v1beta2 API: types, required fields, no unknown keys."""
    model = SparkV1beta2SparkApplication.from_dict(obj)
    extra = unknown_keys(obj, model.to_dict())
    if extra:
        raise ValueError(f"fields not in the SparkApplication v1beta2 schema: {extra}")


def validate_object(obj: dict[str, Any]) -> None:
    """Validate one manifest offline: Kubernetes schemas (strict) or the SparkApplication CRD."""
    if obj.get("apiVersion", "").startswith("sparkoperator.k8s.io/"):
        validate_spark_application(obj)
    else:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/namespaces/(?P<ns>[^/]+)"
    r"/(?P<plural>[^/]+)(?:/(?P<name>[^/?]+))?"
)


class FakeApiServer:
    """A loopback stand-in for kube-apiserver: namespaces, quotas, config maps, apps."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.namespaces: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _reply(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self) -> tuple[str, str, str | None] | None:
                fake.requests.append((self.command, self.path))
                match = _PATH.match(self.path)
                if not match or match["ns"] not in fake.namespaces:
                    self._reply(404, _status(404, f"not found: {self.path}"))
                    return None
                return match["ns"], match["plural"], match["name"]

            def do_GET(self) -> None:
                route = self._route()
                if route:
                    obj = fake.objects.get(route)  # type: ignore[arg-type]
                    self._reply(200, obj) if obj else self._reply(404, _status(404, "not found"))

            def do_DELETE(self) -> None:
                route = self._route()
                if route:
                    found = fake.objects.pop(route, None)  # type: ignore[arg-type]
                    self._reply(200, _status(200, "deleted")) if found else self._reply(
                        404, _status(404, "not found")
                    )

            def do_POST(self) -> None:
                route = self._route()
                if not route:
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                ns, plural, _ = route
                if body.get("metadata", {}).get("namespace", ns) != ns:
                    self._reply(400, _status(400, "namespace of body and path differ"))
                    return
                if plural == "sparkapplications":
                    try:
                        validate_spark_application(body)
                    except Exception as err:  # the CRD schema refusing it
                        self._reply(422, _status(422, str(err)))
                        return
                key = (ns, plural, body["metadata"]["name"])
                if key in fake.objects:
                    self._reply(409, _status(409, "already exists"))
                    return
                fake.objects[key] = body
                self._reply(201, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add_namespace(self, ns: str, hard: dict[str, str], used: dict[str, str]) -> None:
        self.namespaces.add(ns)
        self.objects[(ns, "resourcequotas", "avip-pool")] = {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "avip-pool", "namespace": ns},
            "spec": {"hard": hard},
            "status": {"hard": hard, "used": used},
        }

    def of_kind(self, plural: str) -> list[dict[str, Any]]:
        return [o for (_, p, _), o in self.objects.items() if p == plural]


def _status(code: int, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "message": message,
    }


# --- rendering and the invariants every rendered manifest set must satisfy ------------

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}


def kustomize_command() -> list[str] | None:
    """The devstack's kustomize (AVIP_TEST_KUSTOMIZE), else `kubectl kustomize`, else None."""
    path = os.environ.get("AVIP_TEST_KUSTOMIZE")
    if path and os.access(path, os.X_OK):
        return [path, "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def render(directory: str) -> list[dict[str, Any]]:
    command = kustomize_command()
    if command is None:
        pytest.skip(
            "no kustomize: run `devstack/devstack.sh up k8stools` (sets AVIP_TEST_KUSTOMIZE)"
        )
    out = subprocess.run([*command, directory], check=True, capture_output=True, text=True)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    kind = obj["kind"]
    if kind == "Pod":
        return obj["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if kind in WORKLOADS:
        return obj["spec"]["template"]["spec"]
    return None


def workload_problems(objects: list[dict[str, Any]]) -> list[str]:
    """Containers without cpu+memory requests and limits, or main containers without probes."""
    problems = []
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        for group in ("initContainers", "containers"):
            for c in spec.get(group, []):
                res = c.get("resources", {})
                for part in ("requests", "limits"):
                    missing = {"cpu", "memory"} - set(res.get(part, {}))
                    if missing:
                        problems.append(f"{where} {c['name']}: no {part} for {sorted(missing)}")
                if group == "containers" and obj["kind"] not in ("Job", "CronJob"):
                    for probe in ("readinessProbe", "livenessProbe"):
                        if probe not in c:
                            problems.append(f"{where} {c['name']}: no {probe}")
        template_meta = obj["spec"].get("template", {}).get("metadata", {})
        if "prometheus.io/scrape" not in template_meta.get("annotations", {}):
            problems.append(f"{where}: no prometheus.io/scrape annotation")
    return problems


def user_namespaces(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["name"]: o
        for o in objects
        if o["kind"] == "Namespace"
        and o["metadata"].get("labels", {}).get("avip.io/user-namespace") == "true"
    }


def namespace_problems(objects: list[dict[str, Any]]) -> list[str]:
    """User namespaces lacking a ResourceQuota (cpu+memory), a LimitRange or a default deny."""
    problems = []
    for ns in user_namespaces(objects):
        inside = [o for o in objects if o["metadata"].get("namespace") == ns]
        quotas = [o for o in inside if o["kind"] == "ResourceQuota"]
        hard = {k for q in quotas for k in q["spec"].get("hard", {})}
        need = {"limits.cpu", "limits.memory", "requests.cpu", "requests.memory"}
        if need - hard:
            problems.append(f"namespace {ns}: quota lacks {sorted(need - hard)}")
        if not any(o["kind"] == "LimitRange" for o in inside):
            problems.append(f"namespace {ns}: no LimitRange")
        denies = [
            o
            for o in inside
            if o["kind"] == "NetworkPolicy"
            and o["spec"].get("podSelector") == {}
            and "Ingress" in o["spec"].get("policyTypes", [])
            and not o["spec"].get("ingress")
        ]
        if not denies:
            problems.append(f"namespace {ns}: no default-deny NetworkPolicy")
    return problems


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector (matchLabels and In/NotIn/Exists/DoesNotExist) applied to labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def ingress_admits(
    objects: list[dict[str, Any]], target_ns: str, source_labels: dict[str, str]
) -> bool:
    """Whether any NetworkPolicy in ``target_ns`` lets pods of another namespace in.

    Ingress is allowed if a rule has a peer that matches the source namespace
    (namespaceSelector on its labels), or an ipBlock (pod IPs of any namespace),
    or no ``from`` at all (everyone).
    """
    for policy in objects:
        if policy["kind"] != "NetworkPolicy" or policy["metadata"].get("namespace") != target_ns:
            continue
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from")
            if not peers:
                return True
            for peer in peers:
                if "ipBlock" in peer:
                    return True
                ns_sel = peer.get("namespaceSelector")
                if ns_sel is not None and _selects(ns_sel, source_labels):
                    return True
    return False
