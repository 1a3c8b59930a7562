"""A real `riskscreen serve` process: refuses an altered model, starts, drains on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_support import sqlite_url

from riskscreen.audit.keys import KeyStore
from riskscreen.registry import Registration, client, tree_sha256
from riskscreen.settings import Settings

RISKSCREEN = Path(sys.executable).with_name("riskscreen")
START_TIMEOUT = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve_env(settings: Settings, audit_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKSCREEN_")}
    return env | {
        "RISKSCREEN_DATA_DIR": str(settings.data_dir),
        "RISKSCREEN_AUDIT_URL": audit_url,
        "PYTHONUNBUFFERED": "1",
    }


@contextmanager
def tampered_artifact(settings: Settings, version: str) -> Iterator[Path]:
    """Alter one byte of meaning in the registered trees; put the original back afterwards."""
    source = client(settings).get_model_version_download_uri("riskscreen", version)
    root = Path(source.removeprefix("file://"))
    model_txt = root / "artifacts" / "bundle" / "model.txt"
    original = model_txt.read_bytes()
    before = tree_sha256(root)
    try:
        model_txt.write_bytes(original.replace(b"Tree=0", b"Tree=0 ", 1))
        yield model_txt
    finally:
        model_txt.write_bytes(original)
        assert tree_sha256(root) == before


def test_an_altered_model_stops_start_up(
    registered: tuple[Settings, Registration], tmp_path: Path
) -> None:
    settings, registration = registered
    port = free_port()
    with tampered_artifact(settings, registration.version):
        done = subprocess.run(
            [str(RISKSCREEN), "serve", "--port", str(port)],
            env=serve_env(settings, sqlite_url(tmp_path)),
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
        )
    assert done.returncode != 0
    assert "cannot serve" in done.stderr and "refusing to load an altered model" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)


def _wait_ready(proc: subprocess.Popen[str], url: str) -> httpx.Response:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the server did not come up in time")


def _raw_request(port: int, token: str, body: dict[str, Any]) -> tuple[socket.socket, bytes]:
    """Open a connection and send a POST /v1/scores whose last body bytes are held back."""
    payload = json.dumps(body).encode()
    head = (
        "POST /v1/scores HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head + payload[:-10])
    return sock, payload[-10:]


def _read_response(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_serve_starts_answers_and_drains_on_sigterm(
    registered: tuple[Settings, Registration],
    bodies: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    settings, _ = registered
    audit_url = sqlite_url(tmp_path)
    keys = KeyStore.from_url(audit_url)
    keys.create_schema()
    _, token = keys.create("case_manager", "start-up test")
    keys.close()
    port = free_port()
    proc = subprocess.Popen(
        [str(RISKSCREEN), "serve", "--port", str(port)],
        env=serve_env(settings, audit_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = _wait_ready(proc, f"http://127.0.0.1:{port}/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        # A request in flight when SIGTERM arrives is completed before the process exits.
        sock, rest = _raw_request(port, token, bodies[0])
        time.sleep(0.5)  # the server has the headers and waits for the rest of the body
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with sock:
            sock.sendall(rest)
            answer = _read_response(sock)
        status_line, _, rest_of_answer = answer.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 201 Created", answer[:500]
        assert b"connection: close" in rest_of_answer.lower()
        assert b'"probability"' in answer
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # uvicorn finishes its graceful shutdown, then re-raises the captured SIGTERM so that the
    # exit status tells a supervisor why it stopped (systemd counts that as a clean exit).
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err and "Finished server process" in err
    assert "Traceback" not in err and '"level": "ERROR"' not in err
    assert bodies[0]["case_ref"] not in err  # logs carry no case reference
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
