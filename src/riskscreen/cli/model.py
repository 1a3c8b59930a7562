"""`riskscreen train` and `riskscreen score`: a model made and registered, a table scored."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from riskscreen.cli.common import configure_logging, exit_as_training, load_settings
from riskscreen.cli.mapping import load_mapping_or_exit

DEFAULT_CONFIG = Path("configs/train.yaml")

if TYPE_CHECKING:
    import pandas as pd

    from riskscreen.contract.problems import Problem


def train(
    config: Annotated[
        Path | None,
        typer.Option(help="Training config YAML (default: configs/train.yaml if it exists)."),
    ] = None,
) -> None:
    """Train, evaluate, register in MLflow, and make it `champion` if every gate holds."""
    from riskscreen.registry import mlflow_environment

    mlflow_environment()
    configure_logging()
    from riskscreen.jobs.training import train_and_register

    if config is not None and not config.is_file():
        raise typer.BadParameter(f"no config file at {config}", param_hint="--config")
    if config is None and DEFAULT_CONFIG.is_file():
        config = DEFAULT_CONFIG
    exit_as_training(train_and_register(config, load_settings(), echo=typer.echo))


def _intake_or_exit(
    path: Path, mapping: Path | None, unused: Collection[str]
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The canonical intake and the fields not recorded, or every problem and exit code 1.

    A table in the contract's form may leave out the `unused` fields (those the model does not
    read), as the API does; a mapping says for itself what is not recorded.
    """
    from riskscreen.contract import data, read
    from riskscreen.contract.export import read_export
    from riskscreen.contract.problems import DataValidationError

    problems: list[Problem] = []
    if mapping is None:
        frame = read.read_table(path)
        absent = tuple(f for f in unused if f not in frame.columns)
        problems = data.validate_intake_frame(frame, path.name, not_recorded=absent)
        if not problems:
            return data.to_canonical_intake(frame, absent), absent
    else:
        try:
            export = read_export(path, None, load_mapping_or_exit(mapping))
            return export.intake, export.not_recorded
        except DataValidationError as exc:
            problems = exc.problems
    for p in problems:
        typer.echo(p.describe(), err=True)
    typer.echo(f"{len(problems)} problem(s) found; nothing was written.", err=True)
    raise typer.Exit(code=1)


def score(
    input: Annotated[
        Path, typer.Option("--input", help="Intake table (CSV or Parquet; .xlsx with --mapping).")
    ],
    output: Annotated[Path, typer.Option(help="Where to write the scores (Parquet).")],
    model_uri: Annotated[
        str | None,
        typer.Option(help="models:/NAME@ALIAS or models:/NAME/VERSION (default: the champion)."),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(help="Mapping YAML to read an export in another form (.xlsx too) through."),
    ] = None,
) -> None:
    """Score and explain every row of an intake table with the verified registered model."""
    from riskscreen.registry import mlflow_environment

    mlflow_environment()
    from riskscreen import registry
    from riskscreen.contract.schema import INTAKE_FIELDS
    from riskscreen.model.scoring import score_frame

    settings = load_settings()
    name, version, alias = registry.parse_model_uri(model_uri or settings.model_uri)
    settings = settings.model_copy(update={"model_name": name, "model_alias": alias or "champion"})
    loaded = registry.load_verified(settings, version)
    unused = [
        f.name
        for f in INTAKE_FIELDS
        if f.role in ("feature", "audit") and f.name not in loaded.bundle.spec.fields
    ]
    intake, not_recorded = _intake_or_exit(input, mapping, unused)
    needed = [f for f in loaded.bundle.spec.fields if f in not_recorded]
    if needed:
        typer.echo(
            f"The model reads {', '.join(needed)}, which the mapping declares not recorded; "
            "nothing was written.",
            err=True,
        )
        raise typer.Exit(code=1)
    scores = score_frame(intake, loaded.bundle)
    scores.insert(0, "case_ref", intake["case_ref"].to_numpy())
    scores["model_version"] = loaded.version
    scores["horizon_months"] = loaded.bundle.horizon_months
    scores["explainer"] = loaded.bundle.explainer
    output.parent.mkdir(parents=True, exist_ok=True)
    scores.to_parquet(output, index=False)
    typer.echo(f"Scored {len(scores)} rows with {name} version {loaded.version} -> {output}")
