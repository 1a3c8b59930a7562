"""`mlflow models serve` on a registered version, then riskscreen serving and replaying it.

MLflow's own server (with `--env-manager local`: there is no internet to build an environment
from) loads the version through its models:/ URI, and so writes `registered_model_meta` into
the stored model folder. riskscreen's artifact hash leaves that file out: afterwards the version
still loads hash-checked, the service scores with it and the auditor replays the score, in the
API and on the command line. The two servers give the same probabilities as the bundle itself.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from http_support import Service, json_value
from typer.testing import CliRunner

from riskscreen.cli import app as cli
from riskscreen.contract.features import encode_frame
from riskscreen.contract.schema import FIELDS_BY_NAME
from riskscreen.model.bundle import ModelBundle
from riskscreen.model.pipeline import TrainingResult
from riskscreen.registry import Registration, client, load_verified
from riskscreen.settings import Settings

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
STARTUP_SECONDS = 180  # imports, the model's download and load; about 10 s on an idle machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow models serve exited ({server.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"mlflow models serve not up after {STARTUP_SECONDS} s:\n{log.read_text()}")


@contextmanager
def mlflow_serving(settings: Settings, version: str, folder: Path) -> Iterator[str]:
    """`mlflow models serve` on models:/riskscreen/VERSION in a process group of its own (it
    starts uvicorn as a child); the group is stopped on exit. Yields the server's URL."""
    port = _free_port()
    env = os.environ | {
        # Both: `mlflow.set_registry_uri` in an earlier register() of this process (another
        # test's store) leaves MLFLOW_REGISTRY_URI in os.environ, and it would win.
        "MLFLOW_TRACKING_URI": settings.resolved_tracking_uri,
        "MLFLOW_REGISTRY_URI": settings.resolved_tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        # MLflow runs `exec uvicorn ...` through bash: the virtualenv's bin must be on PATH.
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # fmt: off
    command = [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/riskscreen/{version}",
               "--env-manager", "local", "-p", str(port), "--host", "127.0.0.1", "-w", "1"]
    # fmt: on
    log = folder / "mlflow-serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url, server, log)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _with_unknowns(frame: pd.DataFrame, bundle: ModelBundle) -> pd.DataFrame:
    """The model's fields, with every field that may be unknown left unknown on every third
    row, in the dtypes of riskscreen's canonical intake (nullable Int64 and boolean, NaN)."""
    out = frame[list(bundle.spec.fields)].reset_index(drop=True).copy()
    for name in out.columns:
        f = FIELDS_BY_NAME[name]
        if f.may_be_unknown:
            if f.kind in ("integer", "boolean"):
                out[name] = out[name].astype("Int64" if f.kind == "integer" else "boolean")
            out.loc[::3, name] = None
    return out


def _split_body(frame: pd.DataFrame) -> dict[str, Any]:
    data = [[json_value(v) for v in row] for row in frame.itertuples(index=False)]
    return {"dataframe_split": {"columns": list(frame.columns), "data": data}}


def _invoke(url: str, body: dict[str, Any]) -> list[float]:
    response = httpx.post(f"{url}/invocations", json=body, timeout=60)
    assert response.status_code == 200, response.text
    predictions: list[float] = response.json()["predictions"]
    return predictions


def test_mlflow_serves_it_and_riskscreen_still_serves_and_replays_it(
    registered: tuple[Settings, Registration],
    trained: TrainingResult,
    service_factory: Callable[..., Service],
    bodies: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    settings, registration = registered
    bundle = trained.bundle
    source = client(settings).get_model_version_download_uri("riskscreen", registration.version)
    stored = Path(source.removeprefix("file://"))
    meta = stored / "registered_model_meta"
    meta.unlink(missing_ok=True)  # an earlier MLflow load in this process may have written it
    frame = _with_unknowns(trained.test_frame.head(30), bundle)
    person = {f: bodies[0]["intake"][f] for f in bundle.spec.fields}
    example = json.loads((stored / "serving_input_example.json").read_text(encoding="utf-8"))

    with mlflow_serving(settings, registration.version, tmp_path) as url:
        served = _invoke(url, _split_body(frame))
        served_person = _invoke(url, {"dataframe_records": [person]})
        assert len(_invoke(url, example)) == len(example["inputs"])

    expected = 1.0 / (1.0 + np.exp(-bundle.log_odds(encode_frame(frame, bundle.spec))))
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-9)
    # MLflow wrote into the stored version; riskscreen's hash still holds.
    assert meta.is_file()
    loaded = load_verified(settings, registration.version)
    assert loaded.artifact_sha256 == registration.artifact_sha256

    service = service_factory()  # loads the champion: hash-checked, after MLflow served it
    score = service.score(bodies[0])
    assert score["model"]["version"] == registration.version
    assert score["probability"] == pytest.approx(served_person[0], rel=0, abs=1e-9)
    replay = service.client.get(
        f"/v1/audit/records/{score['score_id']}/replay", headers=service.auth("auditor")
    ).json()
    assert replay["matches"] is True, replay
    assert replay["model_version"] == registration.version
    result = CliRunner().invoke(
        cli,
        ["audit", "replay", "--all"],
        env={
            "RISKSCREEN_DATA_DIR": str(settings.data_dir),
            "RISKSCREEN_AUDIT_URL": str(service.settings.audit_url),
        },
    )
    assert result.exit_code == 0, result.output
    assert "replayed 1 score(s): 1 identical, 0 differ" in result.output
