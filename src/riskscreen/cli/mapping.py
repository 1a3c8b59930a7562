"""`riskscreen mapping draft`: a first mapping for a municipality's own export, to be reviewed.

Also the one way every command loads a mapping file (`load_mapping_or_exit`), so that a mistake
in it reads the same whichever command found it: each with its line, then exit code 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from riskscreen.contract.draft import ExportTable
    from riskscreen.contract.mapping import ExportMapping

app = typer.Typer(
    no_args_is_help=True, help="Mappings from a municipality's own export to the data contract."
)


def load_mapping_or_exit(path: Path, output_format: str = "text") -> ExportMapping:
    """The checked mapping, or every mistake in it (with its line) and exit code 1."""
    from riskscreen.contract.mapping import MappingError, load_mapping

    try:
        return load_mapping(path)
    except MappingError as exc:
        if output_format == "json":
            issues = [{"file": i.file, "line": i.line, "message": i.message} for i in exc.issues]
            typer.echo(json.dumps({"ok": False, "mapping_issues": issues}, ensure_ascii=False))
        for issue in exc.issues:
            typer.echo(issue.describe(), err=True)
        typer.echo(f"{len(exc.issues)} mistake(s) in the mapping; nothing was read.", err=True)
        raise typer.Exit(code=1) from exc


def _read(path: Path, sheet: str | None, header_row: int) -> ExportTable:
    from riskscreen.contract.draft import ExportTable
    from riskscreen.contract.read import TableReadError, read_text_table

    try:
        frame = read_text_table(path, sheet=sheet, header_row=header_row)
    except TableReadError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from exc
    return ExportTable(frame, path.name, sheet, header_row)


@app.command()
def draft(
    export: Annotated[Path, typer.Argument(help="The intake export (CSV, Parquet or .xlsx).")],
    outcomes: Annotated[Path | None, typer.Option(help="The outcome export, if any.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the draft here (never over a file); else print.")
    ] = None,
    sheet: Annotated[str | None, typer.Option(help="The intake's Excel sheet.")] = None,
    header_row: Annotated[int, typer.Option(min=1, help="The intake's header row.")] = 1,
    outcomes_sheet: Annotated[str | None, typer.Option(help="The outcomes' sheet.")] = None,
    outcomes_header_row: Annotated[int, typer.Option(min=1, help="Their header row.")] = 1,
) -> None:
    """Propose a mapping from an export's header and words; a person reviews it before use.

    Sure matches become entries; close ones are written commented out as suggestions; what
    could not be placed is listed at the end of the file and here.
    """
    from riskscreen.contract.draft import draft_mapping

    intake_table = _read(export, sheet, header_row)
    outcome_table = (
        None if outcomes is None else _read(outcomes, outcomes_sheet, outcomes_header_row)
    )
    proposal = draft_mapping(intake_table, outcome_table)
    if out is None:
        typer.echo(proposal.text, nl=False)
    elif out.exists():
        typer.echo(f"{out} exists; the draft is not written over it.", err=True)
        raise typer.Exit(code=1)
    else:
        out.write_text(proposal.text, encoding="utf-8")
        typer.echo(f"Wrote the draft to {out}; review it before use.", err=True)
    if proposal.unplaced:
        typer.echo(f"Not placed ({len(proposal.unplaced)}), to decide:", err=True)
        for item in proposal.unplaced:
            typer.echo(f"  {item}", err=True)
