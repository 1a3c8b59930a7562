"""Tamper detection on a log of 1,000 records: every edit, deletion, insertion, reordering and
truncation is found, at the position of the first bad record.

Exhaustive part: every field of every record edited (and, separately, edited with its own hash
recomputed, as an attacker who knows the format would), every record deleted, a record inserted
before every position (naively, and well-formed with the tail renumbered), every adjacent pair
swapped, the tail cut at every length below a published head, and the whole tail rewritten from
every position. That is about 14,000 logs. `audit verify` streams the rows of a log through one
chain checker; the rows before an edit are byte-identical to the intact log's, so each edited log
is checked from a copy of the checker's state after its intact prefix: the same code over the
same rows as a full walk, at the cost of the edited rows only.

End to end: `riskscreen audit verify --head-seq --head-hash` on edited copies of the SQLite file,
for every field and attack at the first, a middle and the last position (in process), and once as
a real command. On PostgreSQL, the service's role cannot UPDATE, DELETE or TRUNCATE the table.
"""

from __future__ import annotations

import copy
import itertools
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from reliability_servers import riskscreen_cli
from typer.testing import CliRunner

from riskscreen.audit import chain as audit
from riskscreen.audit.chain import AuditStore
from riskscreen.audit.records import GENESIS_HASH, record_hash
from riskscreen.audit.table import audit_records
from riskscreen.audit.verify import ChainChecker
from riskscreen.cli import app as cli

N = 1000
FIELDS = ("seq", "record_id", "kind", "created_at", "payload", "prev_hash", "hash")


@dataclass(frozen=True)
class Row:
    """A stored row as the verifier reads it (the attribute names of the table's columns)."""

    seq: int
    record_id: str
    kind: str
    created_at: str
    payload: str
    prev_hash: str
    hash: str

    def rehashed(self, prev_hash: str | None = None) -> Row:
        """The row with its own hash recomputed (and its link replaced, if given)."""
        row = replace(self, prev_hash=prev_hash if prev_hash is not None else self.prev_hash)
        digest = record_hash(
            seq=row.seq,
            record_id=row.record_id,
            kind=row.kind,
            created_at=row.created_at,
            payload_json=row.payload,
            prev_hash=row.prev_hash,
        )
        return replace(row, hash=digest)


def _flip(text: str, at: int = -1) -> str:
    """The text with one character changed (hex stays hex, digits stay digits)."""
    ch = text[at]
    new = "0" if ch != "0" else "1"
    index = at % len(text)
    return text[:index] + new + text[index + 1 :]


def edited(row: Row, field: str) -> Row:
    """One field of a row changed the smallest way that keeps it plausible."""
    if field == "seq":
        return replace(row, seq=row.seq + N + 1)  # the row moves behind the end of the log
    if field == "kind":
        return replace(row, kind="decision" if row.kind == "score" else "score")
    if field == "payload":
        return replace(row, payload=row.payload.replace('"age":', '"age":1', 1))
    if field == "created_at":
        return replace(row, created_at=_flip(row.created_at, -7))  # a microsecond digit
    value: str = getattr(row, field)
    return replace(row, **{field: _flip(value)})


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Row]]:
    """A SQLite audit log of N score and decision records, and its rows in order."""
    path = tmp_path_factory.mktemp("tamper") / "audit.db"
    store = AuditStore.from_url(f"sqlite:///{path}")
    # Durability is not the point here: build the log without a disk flush per record.
    sa.event.listen(store.engine, "connect", _no_fsync)
    try:
        store.create_schema()
        for i in range(N):
            kind = "score" if i % 3 else "decision"
            store.append(kind, _payload(i))
        with store.engine.connect() as conn:
            query = sa.select(audit_records).order_by(audit_records.c.seq)
            rows = [Row(**dict(r._mapping)) for r in conn.execute(query)]
    finally:
        store.close()
    assert [r.seq for r in rows] == list(range(1, N + 1))
    return path, rows


def _no_fsync(dbapi_connection: object, _record: object) -> None:
    dbapi_connection.execute("PRAGMA synchronous = OFF")  # type: ignore[attr-defined]


def _payload(i: int) -> dict[str, object]:
    return {
        "key_id": f"{i % 7:016x}",
        "role": "case_manager",
        "case_ref": f"case-{i:05d}",
        "model": {"name": "riskscreen", "version": "1", "artifact_sha256": "ab" * 32},
        "inputs": {"age": 18 + i % 40, "self_rated_health": 1 + i % 5, "disability": "none"},
        "outputs": {"probability": (i % 97) / 97, "band": "low", "flagged": False},
    }


class Verifier:
    """`audit verify` over in-memory rows, resumable after any intact prefix (see the docstring)."""

    def __init__(self, rows: Sequence[Row], head: tuple[int, str]) -> None:
        self.head = head
        checker = ChainChecker(head)
        self.states = [copy.copy(checker)]  # states[k]: after k intact rows
        for row in rows:
            assert checker.check(row) is None  # type: ignore[arg-type]
            self.states.append(copy.copy(checker))
        assert checker.finish().ok

    def first_bad(self, intact: int, tail: Iterator[Row]) -> int | None:
        """Position of the first bad record of intact prefix + `tail`, or None if it verifies."""
        checker = copy.copy(self.states[intact])
        for row in tail:
            failure = checker.check(row)  # type: ignore[arg-type]
            if failure is not None:
                return failure.first_bad_seq
        result = checker.finish()
        return None if result.ok else result.first_bad_seq


def _attacks(rows: list[Row]) -> Iterator[tuple[str, int, int, Callable[[], Iterator[Row]]]]:
    """(attack, position, expected first bad position, tail) for every attack at every position.

    The tail starts at the attacked position (the prefix before it is intact) and is built
    lazily, as the verifier reads it: in seq order, as the database would return the rows.
    """
    last = rows[-1]
    forged = Row(0, "00000000-0000-4000-8000-000000000000", "score", last.created_at, "{}", "", "")

    def after(i: int) -> Iterator[Row]:
        return itertools.islice(rows, i, None)

    for p in range(1, N + 1):
        i = p - 1
        for field in FIELDS:
            bad = edited(rows[i], field)
            if field == "seq":  # the row now sorts behind the end of the log
                yield ("edit seq", p, p, lambda i=i, bad=bad: chain(after(i + 1), [bad]))
            else:
                yield (f"edit {field}", p, p, lambda i=i, bad=bad: chain([bad], after(i + 1)))
        rehashed = edited(rows[i], "payload").rehashed()
        yield (
            "edit payload, own hash recomputed",
            p,
            min(p + 1, N),  # the next record's link breaks; the last one contradicts the head
            lambda i=i, bad=rehashed: chain([bad], after(i + 1)),
        )
        yield ("delete", p, p, lambda i=i: after(i + 1))
        prev = rows[i - 1].hash if i else GENESIS_HASH
        naive = replace(forged, seq=p, prev_hash=prev, hash="f" * 64)
        yield ("insert", p, p, lambda i=i, bad=naive: chain([bad], after(i)))
        wellformed = replace(forged, seq=p).rehashed(prev_hash=prev)
        yield (
            "insert well-formed, tail renumbered",
            p,
            min(p + 1, N),
            lambda i=i, bad=wellformed: chain([bad], (replace(r, seq=r.seq + 1) for r in after(i))),
        )
        if p < N:
            a, b = rows[i], rows[i + 1]
            pair = [replace(b, seq=a.seq), replace(a, seq=b.seq)]
            yield ("swap with the next", p, p, lambda i=i, pair=pair: chain(pair, after(i + 2)))
        yield ("truncate below the head", p, p, lambda: iter(()))
        yield (
            "rewrite the tail, all hashes recomputed",
            p,
            N,
            lambda i=i, prev=prev: _rewritten(rows[i:], prev),
        )


def _rewritten(tail: Sequence[Row], prev: str) -> Iterator[Row]:
    first = edited(tail[0], "payload")
    for row in (first, *tail[1:]):
        row = row.rehashed(prev_hash=prev)
        prev = row.hash
        yield row


def test_every_single_edit_at_every_position_is_found(
    log: tuple[Path, list[Row]], record_property: pytest.RecordProperty
) -> None:
    _, rows = log
    head = (rows[-1].seq, rows[-1].hash)
    verifier = Verifier(rows, head)
    counts: dict[str, int] = {}
    misses = []
    for attack, p, expected, tail in _attacks(rows):
        found = verifier.first_bad(p - 1, tail())
        counts[attack] = counts.get(attack, 0) + 1
        if found != expected:
            misses.append((attack, p, expected, found))
    assert not misses, misses[:10]
    assert counts["edit hash"] == N and counts["swap with the next"] == N - 1
    record_property(
        "figures",
        f"tamper detection: {sum(counts.values())} tampered logs of {N} records "
        f"({len(counts)} attacks x every position), each found at the expected position",
    )


# --- end to end, through the command line, on edited copies of the database -----------------

SAMPLE = (1, N // 2, N)


def _sql_attacks(rows: list[Row]) -> Iterator[tuple[str, int, int, list[tuple[str, dict]]]]:
    for p in SAMPLE:
        r = rows[p - 1]
        for field in FIELDS:
            value = getattr(edited(r, field), field)
            yield (
                f"edit {field}",
                p,
                p,
                [(f"UPDATE audit_records SET {field} = :v WHERE seq = :p", {"v": value, "p": p})],
            )
        yield ("delete", p, p, [("DELETE FROM audit_records WHERE seq = :p", {"p": p})])
        yield ("truncate", p, p, [("DELETE FROM audit_records WHERE seq >= :p", {"p": p})])
        if p < N:
            yield (
                "swap",
                p,
                p,
                [
                    ("UPDATE audit_records SET seq = -1 WHERE seq = :p", {"p": p}),
                    ("UPDATE audit_records SET seq = :p WHERE seq = :q", {"p": p, "q": p + 1}),
                    ("UPDATE audit_records SET seq = :q WHERE seq = -1", {"q": p + 1}),
                ],
            )
        forged = {"p": p, "id": "00000000-0000-4000-8000-000000000000", "h": "f" * 64}
        yield (
            "insert",
            p,
            p,
            [
                ("UPDATE audit_records SET seq = -seq - 1 WHERE seq >= :p", {"p": p}),
                ("UPDATE audit_records SET seq = -seq WHERE seq < 0", {}),
                ("INSERT INTO audit_records VALUES (:p, :id, 'score', '', '{}', :h, :h)", forged),
            ],
        )


def test_audit_verify_command_names_the_first_bad_record(
    log: tuple[Path, list[Row]], tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    path, rows = log
    head = ["--head-seq", str(N), "--head-hash", rows[-1].hash]
    runner = CliRunner()

    def verify(db: Path) -> tuple[int, str]:
        env = {"RISKSCREEN_AUDIT_URL": f"sqlite:///{db}", "RISKSCREEN_DATA_DIR": str(tmp_path)}
        result = runner.invoke(cli, ["audit", "verify", *head], env=env)
        return result.exit_code, result.output

    code, out = verify(path)
    assert code == 0 and f"OK: {N} records verify; head {N} {rows[-1].hash}" in out, out
    done = 0
    for attack, p, expected, statements in _sql_attacks(rows):
        copy_path = tmp_path / "edited.db"
        shutil.copyfile(path, copy_path)
        engine = sa.create_engine(f"sqlite:///{copy_path}")
        with engine.begin() as conn:
            for sql, params in statements:
                conn.execute(sa.text(sql), params)
        engine.dispose()
        code, out = verify(copy_path)
        assert code == 1 and f"BROKEN at record {expected}:" in out, (attack, p, out)
        done += 1
    # Once as a real command, as an auditor would run it.
    shutil.copyfile(path, tmp_path / "edited.db")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'edited.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_records SET payload = '{}' WHERE seq = 777")
    engine.dispose()
    env = {
        "RISKSCREEN_AUDIT_URL": f"sqlite:///{tmp_path / 'edited.db'}",
        "RISKSCREEN_DATA_DIR": str(tmp_path),
    }
    proc = subprocess.run(
        [riskscreen_cli(), "audit", "verify", *head],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "BROKEN at record 777:" in proc.stderr, proc.stderr
    record_property(
        "figures",
        f"tamper detection, command line: {done + 1} edited copies of the {N}-record SQLite "
        "log, each reported by `riskscreen audit verify` at the first bad record",
    )


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_records SET payload = '{}' WHERE seq = 1",
        "DELETE FROM audit_records WHERE seq = 1",
        "TRUNCATE audit_records",
    ],
)
def test_service_role_cannot_rewrite_history_on_postgres(
    pg_database_url: str, pg_login_role: tuple[str, str], statement: str
) -> None:
    role, role_url = pg_login_role
    owner = AuditStore.from_url(pg_database_url)
    try:
        owner.create_schema()
        audit.grant_service_role(owner.engine, role)
        owner.append("score", _payload(1))
    finally:
        owner.close()
    conninfo = sa.make_url(role_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)
    service = AuditStore.from_url(role_url)
    try:
        assert service.verify().ok and service.verify().checked == 1
        service.append("score", _payload(2))  # what it may do still works
    finally:
        service.close()
