"""`riskscreen model`: what an auditor or admin does with a registered version."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from riskscreen.cli.common import load_settings

app = typer.Typer(no_args_is_help=True, help="Registered model versions: approve.")


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
