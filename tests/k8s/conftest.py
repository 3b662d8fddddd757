"""Fixtures for the k8s tests (helpers live in k8s_helpers.py)."""

from __future__ import annotations

import pytest
from k8s_helpers import FakeApiServer


@pytest.fixture
def fake_apiserver():
    fake = FakeApiServer()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def fake_api_client(fake_apiserver):
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = fake_apiserver.url
    with client.ApiClient(configuration) as api_client:
        yield api_client
