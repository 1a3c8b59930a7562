"""`riskscreen synth` and `riskscreen validate`: cohorts made, and exports checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from riskscreen.cli.common import configure_logging
from riskscreen.cli.mapping import load_mapping_or_exit


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
    intake: Annotated[
        Path, typer.Option(help="Intake table (CSV or Parquet; .xlsx too with a mapping).")
    ],
    outcomes: Annotated[Path | None, typer.Option(help="Outcome table.")] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="Mapping YAML for an export not in the contract's form.")
    ] = None,
    output_format: Annotated[
        Literal["text", "json"],
        typer.Option("--format", help="text for a person, json for scripts."),
    ] = "text",
) -> None:
    """Check a municipality's export against the data contract; list every problem found.

    With --mapping, the export is read through it and the coverage report is printed first:
    where every contract field comes from, the words no value map covers, the problems grouped.
    """
    if mapping is not None:
        _validate_mapped(intake, outcomes, mapping, output_format)
        return
    from riskscreen.contract import data

    problems = data.validate_files(intake, outcomes)
    if output_format == "json":  # where and why; the cell itself is left to the text report
        found = [
            {"file": p.file, "row": p.row, "column": p.column, "reason": p.reason} for p in problems
        ]
        typer.echo(json.dumps({"ok": not problems, "problems": found}, ensure_ascii=False))
    else:
        for p in problems:
            typer.echo(p.describe(), err=True)
    if problems:
        typer.echo(f"{len(problems)} problem(s) found; nothing was written.", err=True)
        raise typer.Exit(code=1)
    if output_format == "text":
        typer.echo("OK: both tables follow the data contract.")


def _validate_mapped(
    intake: Path, outcomes: Path | None, mapping: Path, output_format: str
) -> None:
    from riskscreen.contract.export import check_export

    coverage = check_export(intake, outcomes, load_mapping_or_exit(mapping, output_format))
    if output_format == "json":
        typer.echo(json.dumps(coverage.to_dict(), ensure_ascii=False, indent=2))
    else:
        typer.echo(coverage.render_text())
    if not coverage.ok:
        typer.echo(f"{len(coverage.problems)} problem(s) found; nothing was written.", err=True)
        raise typer.Exit(code=1)
    if output_format == "text":
        typer.echo("OK: the export, read through the mapping, follows the data contract.")
