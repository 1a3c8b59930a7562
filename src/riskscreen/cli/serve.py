"""`riskscreen serve` and `riskscreen run`: the service, and the main job that leads to it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from riskscreen.cli.common import configure_logging, load_settings, stores


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

    configure_logging()
    try:
        load_verified(load_settings())  # fail fast with a clear message before the server starts
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

    configure_logging()
    settings = load_settings()
    try:
        load_verified(settings)
        typer.echo(f"champion found in {settings.resolved_tracking_uri}")
    except ModelNotAvailable:
        typer.echo("no champion registered yet: training on the default synthetic cohort")
        registration = train_and_register(Path("configs/train.yaml"), settings, echo=typer.echo)
        if not registration.champion:
            typer.echo(
                f"the trained model is not champion ({registration.verdict.replace('_', ' ')}); "
                "nothing to serve",
                err=True,
            )
            raise typer.Exit(code=2) from None
    audit, keys = stores(ctx)
    if keys.count(include_revoked=True) == 0:
        key, token = keys.create("case_manager", "demo case manager")
        audit.append("key_created", key.as_payload())
        typer.echo(f"DEMO case-manager key (shown once, for trying the API): {token}")
    typer.echo(f"serving on http://{host}:{port} (OpenAPI docs at http://{host}:{port}/docs)")
    serve(host=host, port=port, workers=1)
