"""A model bundle as one archive file that travels between municipalities.

A municipality with few people may start from a model trained elsewhere (DESIGN.md, "Small
cohorts"). The bundle travels as one plain tar file, written deterministically (sorted members,
fixed times, owners and modes; no compression, so no compressor version changes a byte): the
same bundle always gives the same bytes, hence the same SHA-256, which the sender passes to the
receiver out of band. Any hash carried inside the archive would prove nothing, since whoever
altered the archive could alter it too.

Reading checks the SHA-256 of the file's bytes before anything in it is opened, then extracts
defensively: only the regular files a bundle consists of, flat, size-limited, into a temporary
directory, through tarfile's "data" filter. Only then does `load_bundle` parse them, and it
runs no code from the files (the bundle is stored without pickle).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from riskscreen.model.bundle import META_FILE, ModelBundle, load_bundle, save_bundle

# The files `save_bundle` writes: bundle.json and one family's model file (trees' LightGBM text
# model, a linear model's or an EBM's JSON). Nothing else is ever extracted.
MEMBERS = frozenset({META_FILE, "model.txt", "linear.json", "ebm.json"})
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024
MAX_MEMBER_BYTES = 128 * 1024 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ArchiveRefused(ValueError):
    """The archive was not read: its hash differs, or its content is not a bundle's."""


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of some bytes, as the lowercase hex the command line prints."""
    return hashlib.sha256(data).hexdigest()


def archive_bytes(bundle: ModelBundle) -> bytes:
    """The bundle as a plain tar: the same bundle gives the same bytes on every machine."""
    with tempfile.TemporaryDirectory() as tmp:
        save_bundle(bundle, Path(tmp))
        files = sorted(Path(tmp).iterdir(), key=lambda p: p.name)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for path in files:
                content = path.read_bytes()
                info = tarfile.TarInfo(path.name)
                info.size, info.mtime, info.mode = len(content), 0, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def write_archive(bundle: ModelBundle, path: Path) -> str:
    """Write the bundle's archive to `path` (replaced whole, never half-written); its SHA-256."""
    data = archive_bytes(bundle)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
    return sha256_hex(data)


def read_archive(path: Path, sha256: str) -> ModelBundle:
    """The bundle in an archive whose bytes hash to `sha256`, read without trusting it.

    The file is read once into memory and hashed; a mismatch refuses it before any byte is
    interpreted. The verified bytes themselves (not the file again) are then extracted.

    Raises:
        ArchiveRefused: a malformed expected hash, a file too large, a hash mismatch, or an
            archive that is not exactly a bundle (links, directories, paths, other files).
    """
    expected = sha256.strip().lower()
    if not _HEX64.fullmatch(expected):
        raise ArchiveRefused("the expected SHA-256 must be 64 hexadecimal digits")
    data = _bounded_read(path)
    actual = sha256_hex(data)
    if actual != expected:
        raise ArchiveRefused(
            f"{path.name}: SHA-256 {actual}, but {expected} was expected: refused unopened "
            "(ask the sender for the archive and its hash again, through separate channels)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        _extract(data, Path(tmp), path.name)
        return load_bundle(Path(tmp))


def _bounded_read(path: Path) -> bytes:
    if not path.is_file():
        raise ArchiveRefused(f"no archive file at {path}")
    with path.open("rb") as f:
        data = f.read(MAX_ARCHIVE_BYTES + 1)
    if len(data) > MAX_ARCHIVE_BYTES:
        raise ArchiveRefused(f"{path.name} is larger than {MAX_ARCHIVE_BYTES} bytes")
    return data


def _extract(data: bytes, directory: Path, label: str) -> None:
    """Extract the bundle's files from verified tar bytes, refusing anything else."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            members = tar.getmembers()
            _check_members(members, label)
            tar.extractall(directory, members=members, filter="data")
    except tarfile.TarError as exc:
        raise ArchiveRefused(f"{label} is not a readable tar archive: {exc}") from exc


def _check_members(members: list[tarfile.TarInfo], label: str) -> None:
    seen: set[str] = set()
    for m in members:
        name = PurePosixPath(m.name)
        if name.is_absolute() or ".." in name.parts or len(name.parts) != 1:
            raise ArchiveRefused(f"{label}: member {m.name!r} is not a plain file name")
        if not m.isreg():
            raise ArchiveRefused(f"{label}: member {m.name!r} is not a regular file")
        if m.name not in MEMBERS or m.name in seen:
            raise ArchiveRefused(f"{label}: unexpected or repeated member {m.name!r}")
        if m.size > MAX_MEMBER_BYTES:
            raise ArchiveRefused(f"{label}: member {m.name!r} is larger than {MAX_MEMBER_BYTES}")
        seen.add(m.name)
    if META_FILE not in seen or len(seen) != 2:
        raise ArchiveRefused(f"{label}: a bundle archive holds {META_FILE} and one model file")
