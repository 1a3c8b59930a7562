"""`riskscreen synth` and `riskscreen validate`: cohorts made, and exports checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riskscreen.cli.common import configure_logging


def synth(
    out: Annotated[Path, typer.Option(help="Folder to write the cohort into.")],
    n: Annotated[int, typer.Option(min=1, help="Number of people.")] = 200_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 7,
    horizon_months: Annotated[int, typer.Option(min=1, max=120)] = 24,
    config: Annotated[Path | None, typer.Option(help="Generator config YAML.")] = None,
) -> None:
    """Generate a synthetic intake cohort with outcomes, oracle probabilities and a data card."""
    from riskscreen.synth import generate as synth_mod

    configure_logging()
    cfg = synth_mod.load_synth_config(config)
    summary = synth_mod.write_cohort(
        out, n=n, seed=seed, horizon_months=horizon_months, config=cfg, progress=True
    )
    typer.echo(summary)


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
