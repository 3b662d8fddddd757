"""The platform image (issue 15): `avip --help` and the API's /healthz and /readyz run
inside it. The image is built by `make image` (podman; a debootstrap base where no image
registry answers): minutes of pip, so the suite uses an image already built and says how
to build one otherwise. Run through buildah's chroot isolation: this sandbox's OCI runtime
(crun) refuses both its cgroup layout and setrlimit."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest
from testing_utils import free_port, wait_until_answers

IMAGE = "localhost/avip/platform:0.1.0"


@pytest.fixture
def container():  # type: ignore[no-untyped-def]
    if shutil.which("buildah") is None or shutil.which("podman") is None:
        pytest.skip("no podman/buildah: `make image` installs them and builds the image")
    if subprocess.run(["podman", "image", "exists", IMAGE]).returncode != 0:
        pytest.skip(f"no {IMAGE}: build it with `make image`")
    name = subprocess.run(["buildah", "from", IMAGE], capture_output=True, text=True,
                          check=True).stdout.strip()
    yield name
    subprocess.run(["buildah", "rm", name], capture_output=True)


def _run(container: str, *command: str, **kwargs):  # type: ignore[no-untyped-def]
    return subprocess.Popen(["buildah", "run", "--isolation", "chroot", "--env",
                             "AVIP_DATA_DIR=/tmp/avip-data", container, "--",
                             "/opt/entrypoint.sh", *command], **kwargs)


@pytest.mark.slow
def test_the_image_runs_the_cli_and_the_api_with_its_probes(container: str) -> None:
    helped = _run(container, "avip", "--help", stdout=subprocess.PIPE, text=True)
    out, _ = helped.communicate(timeout=120)
    assert helped.returncode == 0 and "avip — a science platform" in out
    port = free_port()
    api = _run(container, "avip", "api", "--host", "127.0.0.1", "--port", str(port),
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/healthz", api)
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").json() == {
            "ready": True, "checks": {"store": "ok"}}
    finally:
        api.terminate()
        api.wait(timeout=30)
        subprocess.run(["pkill", "-f", f"avip api --host 127.0.0.1 --port {port}"])
