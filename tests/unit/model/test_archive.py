"""The bundle archive: the same bundle gives the same bytes; a file whose hash differs is refused
before anything in it is opened; an archive that is not exactly a bundle is refused whatever its
hash, and nothing is written outside the temporary directory."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from family_data import SPEC, Data, family_data

from riskscreen.model import archive
from riskscreen.model.archive import ArchiveRefused, archive_bytes, read_archive, write_archive
from riskscreen.model.bundle import Calibration, ModelBundle, Thresholds
from riskscreen.model.config import ModelConfig, TreeCandidate
from riskscreen.model.ebm import MainEffectsEBM
from riskscreen.model.families import EBM, LINEAR, TREES
from riskscreen.model.linear import PenalizedLogistic
from riskscreen.model.train import fit_trees

PROVENANCE = {"horizon_months": 24, "run_id": "r-1", "unknown_fields": ["occupation_group"]}


@pytest.fixture(scope="module")
def data() -> Data:
    return family_data()


@pytest.fixture(scope="module")
def bundles(data: Data) -> dict[str, ModelBundle]:
    x, y, w = data.x, data.y, data.w
    models = {
        TREES: fit_trees(
            x, y, w, SPEC, ModelConfig(num_threads=1), TreeCandidate(num_trees=20, num_leaves=4)
        ),
        LINEAR: PenalizedLogistic(spec=SPEC, cs=(0.1,), cv=2).fit(x, y, w).model_,
        EBM: MainEffectsEBM(spec=SPEC, outer_bags=1).fit(x, y, w).model_,
    }
    return {
        name: ModelBundle(model, SPEC, Calibration(0.9, -0.1), Thresholds(0.6, 0.4), PROVENANCE)
        for name, model in models.items()
    }


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, content in members:
            info.size = len(content) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(content) if info.isreg() else None)
    return buffer.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _forbid_opening(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, opening a tar or parsing a bundle fails the test (and is recorded)."""
    calls: list[str] = []

    def refuse(what: str):  # type: ignore[no-untyped-def]
        def called(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(what)
            raise AssertionError(f"{what} called on an archive whose hash differs")

        return called

    monkeypatch.setattr(archive.tarfile, "open", refuse("tarfile.open"))
    monkeypatch.setattr(archive, "load_bundle", refuse("load_bundle"))
    return calls


@pytest.mark.parametrize("family", [TREES, LINEAR, EBM])
def test_the_same_bundle_gives_the_same_bytes_and_reads_back_exactly(
    bundles: dict[str, ModelBundle], data: Data, family: str, tmp_path: Path
) -> None:
    bundle = bundles[family]
    first = write_archive(bundle, tmp_path / "a.tar")
    second = write_archive(bundle, tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    assert first == second == hashlib.sha256((tmp_path / "a.tar").read_bytes()).hexdigest()
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {
        (0, 0, 0, "", "", 0o644)
    }
    loaded = read_archive(tmp_path / "a.tar", first.upper())  # hex in either case
    assert loaded.family.name == family and loaded.provenance == PROVENANCE
    assert loaded.calibration == bundle.calibration and loaded.thresholds == bundle.thresholds
    assert np.array_equal(loaded.log_odds(data.x_new), bundle.log_odds(data.x_new))
    for ours, theirs in zip(
        loaded.contributions(data.x), bundle.contributions(data.x), strict=True
    ):
        assert np.array_equal(ours, theirs)
    assert archive_bytes(loaded) == (tmp_path / "a.tar").read_bytes()


def test_one_changed_byte_is_refused_before_the_archive_is_opened(
    bundles: dict[str, ModelBundle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.tar"
    digest = write_archive(bundles[LINEAR], path)
    data = bytearray(path.read_bytes())
    spot = data.index(b'"slope": ') + 9  # a digit of bundle.json's calibration: a valid tar
    data[spot] = ord("7") if data[spot] != ord("7") else ord("8")
    path.write_bytes(bytes(data))
    unopened = _forbid_opening(monkeypatch)
    with pytest.raises(ArchiveRefused, match="refused unopened"):
        read_archive(path, digest)
    assert unopened == []


def test_a_valid_archive_with_another_hash_is_refused_unopened(
    bundles: dict[str, ModelBundle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = write_archive(bundles[LINEAR], tmp_path / "expected.tar")
    other = bundles[LINEAR]
    altered = ModelBundle(other.model, SPEC, Calibration(2.0, 1.0), other.thresholds, PROVENANCE)
    write_archive(altered, tmp_path / "sent.tar")  # a well-formed bundle, not the one announced
    unopened = _forbid_opening(monkeypatch)
    with pytest.raises(ArchiveRefused, match=f"but {digest} was expected"):
        read_archive(tmp_path / "sent.tar", digest)
    for bad in ("", "abc", "g" * 64, digest[:-1]):
        with pytest.raises(ArchiveRefused, match="64 hexadecimal digits"):
            read_archive(tmp_path / "expected.tar", bad)
    with pytest.raises(ArchiveRefused, match="no archive file"):
        read_archive(tmp_path / "missing.tar", digest)
    assert unopened == []


def test_members_that_are_not_exactly_a_bundle_are_refused_whatever_the_hash(
    bundles: dict[str, ModelBundle], tmp_path: Path
) -> None:
    good = tmp_path / "good.tar"
    write_archive(bundles[LINEAR], good)
    with tarfile.open(good) as tar:
        meta = tar.extractfile("bundle.json").read()  # type: ignore[union-attr]
        model = tar.extractfile("linear.json").read()  # type: ignore[union-attr]
    target = tmp_path / "outside"
    bundle_json, linear_json = (_member("bundle.json"), meta), (_member("linear.json"), model)
    attacks = {
        "parent": [(_member("../outside"), b"x"), bundle_json],
        "absolute": [(_member(str(target)), b"x"), bundle_json],
        "nested": [(_member("sub/bundle.json"), meta), linear_json],
        "symlink": [(_member("linear.json", tarfile.SYMTYPE, "/etc/passwd"), b""), bundle_json],
        "hard link": [bundle_json, (_member("linear.json", tarfile.LNKTYPE, "bundle.json"), b"")],
        "directory": [(_member("bundle.json", tarfile.DIRTYPE), b"")],
        "other file": [bundle_json, (_member("model.py"), b"import os")],
        "repeated": [bundle_json, bundle_json, linear_json],
        "model only": [linear_json],
        "two models": [bundle_json, linear_json, (_member("ebm.json"), model)],
    }
    for name, members in attacks.items():
        path = tmp_path / f"{name}.tar"
        path.write_bytes(_tar(members))
        with pytest.raises(ArchiveRefused):
            read_archive(path, hashlib.sha256(path.read_bytes()).hexdigest())
        assert not target.exists() and not (tmp_path.parent / "outside").exists(), name
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ArchiveRefused, match="not a readable tar"):
        read_archive(garbage, hashlib.sha256(garbage.read_bytes()).hexdigest())


def test_oversized_members_and_files_are_refused(
    bundles: dict[str, ModelBundle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.tar"
    digest = write_archive(bundles[LINEAR], path)
    monkeypatch.setattr(archive, "MAX_MEMBER_BYTES", 100)
    with pytest.raises(ArchiveRefused, match="larger than 100"):
        read_archive(path, digest)
    monkeypatch.setattr(archive, "MAX_ARCHIVE_BYTES", 1000)
    with pytest.raises(ArchiveRefused, match="larger than 1000 bytes"):
        read_archive(path, digest)
