"""`riskscreen model`: what an auditor or admin does with a registered version, and carrying a
version to another municipality (export) or starting from another's (import)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from riskscreen.cli.common import configure_logging, exit_as_training, load_settings

if TYPE_CHECKING:
    pass

app = typer.Typer(no_args_is_help=True, help="Registered model versions: approve, export, import.")


@app.command("approve")
def approve(
    version: Annotated[str, typer.Option(help="The registered version waiting for approval.")],
    reason: Annotated[str, typer.Option(help="Why it may be served; about the model only.")],
) -> None:
    """Make a version whose only open gates were not assessable champion, with your reason.

    The key is an auditor's or admin's, read as the API reads it: RISKSCREEN_API_KEY, or a
    prompt that does not echo. The approval is an audit record naming the key.
    """
    from riskscreen.registry import mlflow_environment

    mlflow_environment()
    from riskscreen.jobs.approval import ApprovalRefused, approve_version

    token = os.environ.get("RISKSCREEN_API_KEY") or typer.prompt("API key", hide_input=True)
    try:
        approval = approve_version(load_settings(), token, version, reason)
    except ApprovalRefused as exc:
        typer.echo(f"not approved: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(
        f"version {version} approved by key {approval['key_id']} ({approval['role']}) and made "
        f"champion; audit record {approval['audit_record_id']}"
    )


@app.command("export")
def export(
    version: Annotated[str, typer.Option(help="The registered version to export.")],
    out: Annotated[
        Path | None, typer.Option(help="The archive to write (default: NAME-vVERSION.tar).")
    ] = None,
) -> None:
    """Write a registered version, verified against its registered hash, as one archive.

    The same version always gives the same bytes. Give the printed SHA-256 to the receiving
    municipality through another channel than the file: `riskscreen model import` refuses an
    archive whose hash differs before opening it.
    """
    from riskscreen.registry import mlflow_environment

    mlflow_environment()
    from riskscreen.jobs.transfer import export_version
    from riskscreen.registry import ModelNotAvailable, ModelTampered

    try:
        exported = export_version(load_settings(), version, out)
    except (ModelNotAvailable, ModelTampered) as exc:
        typer.echo(f"not exported: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"{exported.name} version {exported.version} -> {exported.path}")
    typer.echo(f"SHA-256 {exported.sha256}")


@app.command("import")
def import_(
    bundle: Annotated[Path, typer.Argument(help="The archive written by `model export`.")],
    sha256: Annotated[str, typer.Option(help="Its SHA-256, received out of band.")],
    config: Annotated[
        Path, typer.Option(help="Training config YAML naming this municipality's data.")
    ],
) -> None:
    """Recalibrate another municipality's model on your own people, judge it and register it.

    Refuses (exit 1) an archive whose SHA-256 differs, before anything in it is read; a model
    that reads a field you do not record, one made for another horizon, or one that never
    learned from unknown answers your intake holds. Otherwise the model is recalibrated on your
    labelled people, compared with a model trained here on the same years, evaluated with the
    gates of training and registered: exit 0 champion, 3 waiting for an approval, 2 a gate
    failed.
    """
    from riskscreen.registry import mlflow_environment

    mlflow_environment()
    configure_logging()
    from riskscreen.jobs.transfer import import_archive
    from riskscreen.model.archive import ArchiveRefused
    from riskscreen.model.folds import TooFewPeople
    from riskscreen.model.imported import ImportRefused

    if not config.is_file():
        raise typer.BadParameter(f"no config file at {config}", param_hint="--config")
    try:
        imported = import_archive(bundle, sha256, config, load_settings(), echo=typer.echo)
    except (ArchiveRefused, ImportRefused, TooFewPeople) as exc:
        typer.echo(f"not imported: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(imported.outcome.comparison.sentence)
    exit_as_training(imported.registration)
