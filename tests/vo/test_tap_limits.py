"""Sync TAP and cone search share the API's threads and cores: each caller may run only a
few requests at once (tap_sync_per_caller), and one caller at the limit holds back no other."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from api.vo.requests import InFlight, VOError


def request_from(host: str) -> SimpleNamespace:
    return SimpleNamespace(client=SimpleNamespace(host=host))


def test_a_caller_at_the_limit_is_refused_and_others_are_not() -> None:
    limits = InFlight(per_caller=2)
    alice, bob = SimpleNamespace(name="alice"), SimpleNamespace(name="bob")
    here = request_from("10.0.0.1")
    with limits.hold(here, alice), limits.hold(here, alice):
        with pytest.raises(VOError) as refused, limits.hold(here, alice):
            pass
        assert refused.value.status == 429 and "/tap/async" in refused.value.message
        with limits.hold(here, bob), limits.hold(here, bob):  # bob is not held back
            pass
        with limits.hold(request_from("10.0.0.2"), None):  # nor a caller without a token
            pass
    with limits.hold(here, alice), limits.hold(here, alice):  # released when they end
        pass


def test_callers_without_a_token_are_told_apart_by_address() -> None:
    limits = InFlight(per_caller=1)
    with limits.hold(request_from("10.0.0.1"), None):
        with pytest.raises(VOError), limits.hold(request_from("10.0.0.1"), None):
            pass
        with limits.hold(request_from("10.0.0.2"), None):
            pass


def test_a_request_that_fails_still_gives_its_place_back() -> None:
    limits = InFlight(per_caller=1)
    alice = SimpleNamespace(name="alice")
    with pytest.raises(RuntimeError), limits.hold(request_from("h"), alice):
        raise RuntimeError("the query failed")
    with limits.hold(request_from("h"), alice):
        pass
