"""The `riskscreen` command line: the I/O edge of the package (files, MLflow, terminal).

Heavy libraries are imported inside the commands so that `riskscreen --help` stays instant.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from riskscreen.audit.chain import AuditRecord, AuditStore
    from riskscreen.audit.keys import KeyStore
    from riskscreen.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


@app.callback(help=__doc__)
def _entry() -> None:
    """Process defaults for every command, set before any numeric library is imported.

    OpenMP threads that spin while waiting make LightGBM 3-4x slower on a shared 2-core machine
    (measured: 300 trees on 170k rows, 14 s against 3-4 s); passive waiting costs nothing
    when the cores are free.
    """
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="Folder to write the cohort into.")],
    n: Annotated[int, typer.Option(min=1, help="Number of people.")] = 200_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 7,
    horizon_months: Annotated[int, typer.Option(min=1, max=120)] = 24,
    config: Annotated[Path | None, typer.Option(help="Generator config YAML.")] = None,
) -> None:
    """Generate a synthetic intake cohort with outcomes, oracle probabilities and a data card."""
    from riskscreen.synth import generate as synth_mod

    _configure_logging()
    cfg = synth_mod.load_synth_config(config)
    summary = synth_mod.write_cohort(
        out, n=n, seed=seed, horizon_months=horizon_months, config=cfg, progress=True
    )
    typer.echo(summary)


@app.command()
def validate(
    intake: Annotated[Path, typer.Option(help="Intake table (CSV or Parquet).")],
    outcomes: Annotated[Path | None, typer.Option(help="Outcome table (CSV or Parquet).")] = None,
) -> None:
    """Check a municipality's export against the data contract; list every problem found."""
    from riskscreen.contract import data

    problems = data.validate_files(intake, outcomes)
    if problems:
        for p in problems:
            typer.echo(p.describe(), err=True)
        typer.echo(f"{len(problems)} problem(s) found; nothing was written.", err=True)
        raise typer.Exit(code=1)
    typer.echo("OK: both tables follow the data contract.")


def _settings() -> Settings:
    from riskscreen.settings import Settings

    return Settings()


@app.command()
def train(
    config: Annotated[Path | None, typer.Option(help="Training config YAML.")] = Path(
        "configs/train.yaml"
    ),
) -> None:
    """Train, evaluate, register in MLflow, and make it `champion` if every gate holds."""
    from riskscreen.registry import mlflow_environment

    mlflow_environment()
    _configure_logging()
    from riskscreen.jobs.training import train_and_register

    outcome = train_and_register(
        config if config and config.exists() else None, _settings(), echo=typer.echo
    )
    if not outcome.champion:
        typer.echo(
            f"Gates failed ({', '.join(outcome.failed_gates)}): version "
            f"{outcome.version} is registered but not made champion.",
            err=True,
        )
        raise typer.Exit(code=2)


@app.command()
def score(
    input: Annotated[Path, typer.Option("--input", help="Intake table (CSV or Parquet).")],
    output: Annotated[Path, typer.Option(help="Where to write the scores (Parquet).")],
    model_uri: Annotated[
        str | None,
        typer.Option(help="models:/NAME@ALIAS or models:/NAME/VERSION (default: the champion)."),
    ] = None,
) -> None:
    """Score and explain every row of an intake table with the verified registered model."""
    from riskscreen.registry import mlflow_environment

    mlflow_environment()
    from riskscreen import registry
    from riskscreen.contract import data
    from riskscreen.model.scoring import score_frame

    settings = _settings()
    name, version, alias = registry.parse_model_uri(model_uri or settings.model_uri)
    settings = settings.model_copy(update={"model_name": name, "model_alias": alias or "champion"})
    frame = data.read_table(input)
    problems = data.validate_intake_frame(frame, input.name)
    if problems:
        for p in problems:
            typer.echo(p.describe(), err=True)
        typer.echo(f"{len(problems)} problem(s) found; nothing was written.", err=True)
        raise typer.Exit(code=1)
    loaded = registry.load_verified(settings, version)
    intake = data.to_canonical_intake(frame)
    scores = score_frame(intake, loaded.bundle)
    scores.insert(0, "case_ref", intake["case_ref"].to_numpy())
    scores["model_version"] = loaded.version
    scores["explainer"] = loaded.bundle.explainer
    output.parent.mkdir(parents=True, exist_ok=True)
    scores.to_parquet(output, index=False)
    typer.echo(f"Scored {len(scores)} rows with {name} version {loaded.version} -> {output}")


keys_app = typer.Typer(no_args_is_help=True, help="API keys for case managers, auditors, admins.")
audit_app = typer.Typer(no_args_is_help=True, help="Verify, replay and export the audit log.")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")


def _stores(ctx: typer.Context) -> tuple[AuditStore, KeyStore]:
    """The audit log and key store (one engine), closed when the command's context closes."""
    from riskscreen.audit.chain import AuditStore
    from riskscreen.audit.keys import KeyStore

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    audit = AuditStore.from_url(settings.resolved_audit_url)
    ctx.call_on_close(audit.close)
    audit.create_schema()
    keys = KeyStore(audit.engine)
    keys.create_schema()
    return audit, keys


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    role: Annotated[str, typer.Option(help="case_manager, auditor or admin")],
    name: Annotated[str, typer.Option(help="Who or what holds the key (no personal data needed).")],
) -> None:
    """Issue a key and print its token once; only a hash is kept."""
    from riskscreen.audit.keys import ROLES

    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}", param_hint="--role")
    audit, keys = _stores(ctx)
    key, token = keys.create(role, name)
    audit.append("key_created", key.as_payload())
    typer.echo(f"key {key.key_id} ({key.role}, {key.name}); the token is shown only now:")
    typer.echo(token)


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """Every key with its role and whether it is revoked (never a secret)."""
    _, keys = _stores(ctx)
    for key in keys.list():
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        typer.echo(f"{key.key_id}  {key.role:12s}  {state:24s}  {key.name}")


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key id shown by `keys list`.")],
) -> None:
    """Revoke a key at once; its token stops working on the next request."""
    audit, keys = _stores(ctx)
    key = keys.revoke(key_id)
    if key is None:
        typer.echo(f"no key {key_id}", err=True)
        raise typer.Exit(code=1)
    audit.append("key_revoked", key.as_payload())
    typer.echo(f"revoked {key.key_id} ({key.role}, {key.name})")


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    head_seq: Annotated[int | None, typer.Option(help="A published head's position.")] = None,
    head_hash: Annotated[str | None, typer.Option(help="A published head's hash.")] = None,
) -> None:
    """Walk the hash chain; exit 1 at the first broken link (and say where)."""
    audit, _ = _stores(ctx)
    expected = (head_seq, head_hash) if head_seq is not None and head_hash else None
    result = audit.verify(expected_head=expected)
    if not result.ok:
        typer.echo(
            f"BROKEN at record {result.first_bad_seq}: {result.reason} "
            f"({result.checked} records before it verify)",
            err=True,
        )
        raise typer.Exit(code=1)
    head = f"; head {result.head[0]} {result.head[1]}" if result.head else ""
    typer.echo(f"OK: {result.checked} records verify{head}")


@audit_app.command("replay")
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
    audit, _ = _stores(ctx)
    settings = _settings()
    cache: dict[str, LoadedModel] = {}

    def load(version: str) -> LoadedModel:
        if version not in cache:
            cache[version] = load_verified(settings, version)
        return cache[version]

    records = [audit.get(record_id)] if record_id else _all_scores(audit)
    bad = 0
    for record in records:
        if record is None or record.kind != "score":
            typer.echo(f"no score record {record_id}", err=True)
            raise typer.Exit(code=1)
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


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option(help="JSON Lines file to write.")],
) -> None:
    """Write every record, hashes included, as JSON Lines for an external auditor."""
    import json

    audit, _ = _stores(ctx)
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


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=16)] = 1,
) -> None:
    """Serve the verified champion over HTTP; refuse to start if it is missing or altered."""
    import uvicorn

    from riskscreen.registry import mlflow_environment

    mlflow_environment()
    from riskscreen.registry import ModelNotAvailable, ModelTampered, load_verified

    _configure_logging()
    try:
        load_verified(_settings())  # fail fast with a clear message before the server starts
    except (ModelNotAvailable, ModelTampered) as exc:
        typer.echo(f"cannot serve: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    from riskscreen.logs import service_log_config

    # Each process takes 1/workers of the per-key rate limit (service/limits.py); an operator
    # running several hosts sets the total number of processes instead.
    os.environ.setdefault("RISKSCREEN_WORKERS", str(workers))
    uvicorn.run(
        "service.main:app",
        host=host,
        port=port,
        workers=workers,
        log_config=service_log_config(),
        access_log=False,
    )


@app.command()
def run(
    ctx: typer.Context,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """The main job: train on the defaults if no champion exists, make a demo key, then serve."""
    from riskscreen.registry import mlflow_environment

    mlflow_environment()
    from riskscreen.jobs.training import train_and_register
    from riskscreen.registry import ModelNotAvailable, load_verified

    _configure_logging()
    settings = _settings()
    try:
        load_verified(settings)
        typer.echo(f"champion found in {settings.resolved_tracking_uri}")
    except ModelNotAvailable:
        typer.echo("no champion registered yet: training on the default synthetic cohort")
        registration = train_and_register(Path("configs/train.yaml"), settings, echo=typer.echo)
        if not registration.champion:
            typer.echo("the trained model failed its gates; nothing to serve", err=True)
            raise typer.Exit(code=2) from None
    audit, keys = _stores(ctx)
    if keys.count(include_revoked=True) == 0:
        key, token = keys.create("case_manager", "demo case manager")
        audit.append("key_created", key.as_payload())
        typer.echo(f"DEMO case-manager key (shown once, for trying the API): {token}")
    typer.echo(f"serving on http://{host}:{port} (OpenAPI docs at http://{host}:{port}/docs)")
    serve(host=host, port=port, workers=1)
