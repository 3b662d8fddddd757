"""`avip dashboards` as deployed (issue 15): a /liveness probe, and the websocket open
from the host names operators allow (behind a Service or an Ingress) and refused from
any other."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from testing_utils import free_port, wait_until_answers
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

REPO = Path(__file__).resolve().parents[2]



async def _opens(port: int, origin: str, token: str) -> bool:
    request = HTTPRequest(f"ws://127.0.0.1:{port}/ws", headers={"Origin": origin})
    try:
        connection = await websocket_connect(request, subprotocols=["bokeh", token])
    except HTTPClientError as error:
        assert error.code == 403, error
        return False
    connection.close()
    return True


@pytest.mark.slow
def test_liveness_and_allowed_websocket_origins(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "AVIP_DATA_DIR": str(tmp_path / "data")}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "avip"), "dashboards", "--port", str(port),
         "--allow-origin", "avip.example.org"], env=env, cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/liveness", process)
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=60).text
        token = re.search(r'"token":\s*"([^"]+)"', page)
        assert token, page[:500]
        assert asyncio.run(_opens(port, "http://avip.example.org", token.group(1)))
        assert not asyncio.run(_opens(port, "http://evil.example.com", token.group(1)))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
