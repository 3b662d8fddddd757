"""Fixtures for the k8s tests (helpers live in k8s_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from kubernetes import client

# The suite runs with --import-mode=importlib: make this folder's helpers importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from k8s_helpers import FakeApiServer  # noqa: E402


@pytest.fixture
def fake_apiserver():
    fake = FakeApiServer()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def fake_api_client(fake_apiserver):
    configuration = client.Configuration()
    configuration.host = fake_apiserver.url
    with client.ApiClient(configuration) as api_client:
        yield api_client
