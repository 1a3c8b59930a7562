"""`riskscreen audit`: verify the chain, replay scores, export the log for an auditor.

Each reads an audit store that must already exist (and replay the model registry too): in the
wrong folder they say where they looked and exit 1, creating nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from riskscreen.cli.common import existing_stores, load_settings, require_registry

if TYPE_CHECKING:
    from riskscreen.audit.chain import AuditStore
    from riskscreen.audit.records import AuditRecord

app = typer.Typer(no_args_is_help=True, help="Verify, replay and export the audit log.")


@app.command("verify")
def audit_verify(
    ctx: typer.Context,
    head_seq: Annotated[int | None, typer.Option(help="A published head's position.")] = None,
    head_hash: Annotated[str | None, typer.Option(help="A published head's hash.")] = None,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Report an empty log as OK (exit 0).")
    ] = False,
) -> None:
    """Walk the hash chain; exit 1 at the first broken link (and say where), or on an empty log
    unless --allow-empty; a store in use holds at least the record of its first key."""
    from riskscreen.audit.db import store_location

    audit, _ = existing_stores(ctx)
    expected = (head_seq, head_hash) if head_seq is not None and head_hash else None
    result = audit.verify(expected_head=expected)
    if not result.ok:
        typer.echo(
            f"BROKEN at record {result.first_bad_seq}: {result.reason} "
            f"({result.checked} records before it verify)",
            err=True,
        )
        raise typer.Exit(code=1)
    if result.checked == 0:
        if not allow_empty:
            typer.echo(
                f"no records to verify in the audit store at {store_location(audit.engine)}: "
                "the log is empty, so this is probably not the store in use; pass "
                "--allow-empty if an empty log is expected",
                err=True,
            )
            raise typer.Exit(code=1)
        typer.echo("OK: 0 records verify (the log is empty)")
        return
    head = f"; head {result.head[0]} {result.head[1]}" if result.head else ""
    typer.echo(f"OK: {result.checked} records verify{head}")


@app.command("replay")
def audit_replay(
    ctx: typer.Context,
    record_id: Annotated[str | None, typer.Option("--id", help="One score record.")] = None,
    all_records: Annotated[bool, typer.Option("--all", help="Every score record.")] = False,
) -> None:
    """Recompute logged scores from the model versions they name; exit 1 on any mismatch."""
    from riskscreen.registry import mlflow_environment

    mlflow_environment()
    from riskscreen.jobs.casework import replay
    from riskscreen.registry import LoadedModel, load_verified

    if bool(record_id) == all_records:
        raise typer.BadParameter("give either --id ID or --all")
    audit, _ = existing_stores(ctx)
    settings = load_settings()
    cache: dict[str, LoadedModel] = {}

    def load(version: str) -> LoadedModel:
        if version not in cache:
            cache[version] = load_verified(settings, version)
        return cache[version]

    if record_id:
        one = audit.get(record_id)
        if one is None or one.kind != "score":
            typer.echo(f"no score record {record_id}", err=True)
            raise typer.Exit(code=1)
        records = [one]
    else:
        records = _all_scores(audit)
    if records:
        require_registry(settings)  # before MLflow makes an empty one to look in
    bad = 0
    for record in records:
        mismatches = [c for c in replay(record, load) if not c.equal]
        bad += bool(mismatches)
        for c in mismatches:
            typer.echo(
                f"{record.record_id}: {c.name} logged {c.logged!r} replayed {c.replayed!r}",
                err=True,
            )
    typer.echo(f"replayed {len(records)} score(s): {len(records) - bad} identical, {bad} differ")
    if bad:
        raise typer.Exit(code=1)


def _all_scores(audit: AuditStore) -> list[AuditRecord]:
    out, after = [], None
    while page := audit.list(kind="score", after_seq=after, limit=1000):
        out.extend(page)
        after = page[-1].seq
    return out


@app.command("export")
def audit_export(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option(help="JSON Lines file to write.")],
) -> None:
    """Write every record, hashes included, as JSON Lines for an external auditor."""
    import json

    audit, _ = existing_stores(ctx)
    count, after = 0, None
    with output.open("w") as fh:
        while page := audit.list(after_seq=after, limit=1000):
            for r in page:
                fh.write(
                    json.dumps(
                        {
                            "seq": r.seq,
                            "record_id": r.record_id,
                            "kind": r.kind,
                            "created_at": r.created_at,
                            "payload": r.payload_json,
                            "prev_hash": r.prev_hash,
                            "hash": r.hash,
                        }
                    )
                    + "\n"
                )
            count += len(page)
            after = page[-1].seq
    typer.echo(f"exported {count} records to {output}")
