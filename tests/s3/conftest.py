"""What every S3 test needs: the devstack MinIO's settings, or a skip saying how to get them."""

from __future__ import annotations

import os

import pytest

from config.settings import Settings, get_settings

S3_TEST_ENV = (
    "AVIP_TEST_S3_ENDPOINT",
    "AVIP_TEST_S3_ACCESS_KEY",
    "AVIP_TEST_S3_SECRET_KEY",
    "AVIP_TEST_S3_BUCKET",
)


def devstack_s3() -> dict[str, str]:
    """The devstack's AVIP_TEST_S3_* values (skips the test when `make test` did not set them)."""
    missing = [name for name in S3_TEST_ENV if not os.environ.get(name)]
    if missing:
        pytest.skip(f"no devstack S3 ({', '.join(missing)} unset): run through `make test`")
    return {name: os.environ[name] for name in S3_TEST_ENV}


@pytest.fixture(scope="module")
def s3_settings() -> Settings:
    """The one settings object with AVIP_S3_* pointing at the devstack MinIO, as an operator
    would set them (the environment is restored after the module)."""
    values = devstack_s3()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in values.items():
            mp.setenv(name.replace("AVIP_TEST_", "AVIP_"), value)
        get_settings.cache_clear()
        yield get_settings()
    get_settings.cache_clear()
