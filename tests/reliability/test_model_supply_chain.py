"""Model supply chain: altered artifacts are refused before anything in them is parsed.

A registry of its own per module (the tests edit its artifact store): one byte of the trees
changed, a pickle planted beside the bundle and where MLflow's pyfunc loader would unpickle one
(each would create a sentinel file when unpickled), and a bundle file replaced by a pickle. Each
is refused at `riskscreen serve` start-up and at `POST /v1/admin/reload`, nothing is deserialised
(a spy on the bundle loader), and the sentinel never appears.
"""

from __future__ import annotations

import builtins
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from reliability_servers import command_server, free_port, riskscreen_cli, server_env
from reliability_support import add_keys, client, score_body, sqlite_url

from riskscreen import registry
from riskscreen.model.config import TrainConfig
from riskscreen.model.pipeline import TrainingResult
from riskscreen.registry import ModelTampered, load_verified, register
from riskscreen.settings import Settings


class _Planted:
    """Unpickling this opens (creates) the sentinel file: the harmless stand-in for any code."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (builtins.open, (str(self.sentinel), "w"))


@dataclass
class Registry:
    settings: Settings
    model_root: Path  # the registered model's artifact directory (holds MLmodel)

    @property
    def trees(self) -> Path:
        return self.model_root / "artifacts" / "bundle" / "model.txt"


@pytest.fixture(scope="module")
def own_registry(
    tmp_path_factory: pytest.TempPathFactory, trained: TrainingResult, small_config: TrainConfig
) -> Registry:
    settings = Settings(data_dir=tmp_path_factory.mktemp("supply-chain"))
    assert register(trained, small_config, settings).champion
    (mlmodel,) = [
        p for p in settings.data_dir.rglob("MLmodel") if (p.parent / "artifacts").exists()
    ]
    return Registry(settings, mlmodel.parent)


def _flip_one_byte(path: Path) -> Callable[[], None]:
    original = path.read_bytes()
    at = len(original) // 2
    path.write_bytes(original[:at] + bytes([original[at] ^ 0x01]) + original[at + 1 :])
    return lambda: path.write_bytes(original)


def _plant(path: Path, sentinel: Path) -> Callable[[], None]:
    original = path.read_bytes() if path.exists() else None
    path.write_bytes(pickle.dumps(_Planted(sentinel)))

    def undo() -> None:
        if original is None:
            path.unlink()
        else:
            path.write_bytes(original)

    return undo


ALTERATIONS: dict[str, Callable[[Registry, Path], Callable[[], None]]] = {
    "one byte of the trees": lambda r, s: _flip_one_byte(r.trees),
    "pickle planted in the bundle": lambda r, s: _plant(r.trees.parent / "evil.pkl", s),
    "pickle planted for the pyfunc loader": lambda r, s: _plant(
        r.model_root / "python_model.pkl", s
    ),
    "bundle.json replaced by a pickle": lambda r, s: _plant(r.trees.parent / "bundle.json", s),
}


@contextmanager
def altered(reg: Registry, how: str, sentinel: Path) -> Iterator[None]:
    undo = ALTERATIONS[how](reg, sentinel)
    try:
        yield
    finally:
        undo()


@pytest.fixture
def parse_spy(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Directories the bundle loader was asked to parse."""
    calls: list[Path] = []
    real = registry.load_bundle

    def spy(directory: Path) -> object:
        calls.append(directory)
        return real(directory)

    monkeypatch.setattr(registry, "load_bundle", spy)
    return calls


@pytest.mark.parametrize("how", ALTERATIONS)
def test_refused_before_anything_is_parsed(
    own_registry: Registry, how: str, tmp_path: Path, parse_spy: list[Path]
) -> None:
    sentinel = tmp_path / "sentinel"
    load_verified(own_registry.settings)
    assert len(parse_spy) == 1  # the spy sees a good load
    with altered(own_registry, how, sentinel), pytest.raises(ModelTampered, match="altered"):
        load_verified(own_registry.settings)
    assert len(parse_spy) == 1, "an altered model reached the parser"
    assert not sentinel.exists()


# A start-up costs seconds of imports: the command runs for the two alterations that matter most
# (the loader it calls, load_verified, is tested above for all of them).
@pytest.mark.parametrize("how", ["one byte of the trees", "pickle planted for the pyfunc loader"])
def test_riskscreen_serve_refuses_to_start(
    own_registry: Registry, how: str, tmp_path: Path
) -> None:
    sentinel = tmp_path / "sentinel"
    settings = own_registry.settings.model_copy(update={"audit_url": sqlite_url(tmp_path)})
    port = free_port()
    argv = [riskscreen_cli(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path / "serve.log"
    with (
        altered(own_registry, how, sentinel),
        command_server(argv, server_env(settings), port, log, ready=False) as server,
    ):
        assert server.proc.wait(120) == 1
    text = log.read_text()
    assert "cannot serve" in text and "refusing to load an altered model" in text, text
    assert not sentinel.exists()


@pytest.mark.parametrize("how", ALTERATIONS)
def test_reload_refuses_and_the_verified_model_keeps_serving(
    own_registry: Registry, how: str, tmp_path: Path, parse_spy: list[Path]
) -> None:
    sentinel = tmp_path / "sentinel"
    settings = own_registry.settings.model_copy(update={"audit_url": sqlite_url(tmp_path)})
    keys = add_keys(settings.resolved_audit_url)
    with client(settings) as c:
        before = c.get("/v1/model", headers=keys.auth("admin")).json()
        parsed = len(parse_spy)
        with altered(own_registry, how, sentinel):
            r = c.post("/v1/admin/reload", headers=keys.auth("admin"))
            assert r.status_code == 503 and "altered" in r.json()["detail"], r.text
            assert len(parse_spy) == parsed
            scored = c.post("/v1/scores", json=score_body(), headers=keys.auth("case_manager"))
            assert scored.status_code == 201
            assert scored.json()["model"]["version"] == before["version"]
        assert c.get("/v1/model", headers=keys.auth("admin")).json() == before
        assert c.post("/v1/admin/reload", headers=keys.auth("admin")).status_code == 200
    assert not sentinel.exists()
