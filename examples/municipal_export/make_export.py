"""Write the worked example: a synthetic cohort as a Swedish municipality's export, ready to train.

    .venv/bin/python examples/municipal_export/make_export.py OUT_DIR [--n 3000] [--seed 11]
        [--format xlsx|csv]

OUT_DIR receives what a municipality would have on its side: the intake export
(`kartlaggning.xlsx` with a title row above the header, or `kartlaggning.csv`: `;`, Windows-1252),
the outcome export (`utfall.csv`), the lookup table (`arbetsloshet.csv`), a new secret key for
the pseudonymous case references (`case-ref.key`, kept if it exists), the mapping (`mapping.yaml`,
this folder's template with the key's path filled in) and a training config (`train.yaml`: the
repository's `configs/train.yaml` with only its data section pointing here). Nothing here is
committed: the files are made at run time, and OUT_DIR must lie outside any git working tree,
because the export holds identity numbers and the key beside it turns them into references.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from personnummer import identity_numbers
from swedish_export import intake_table, outcome_table, unemployment_table

from riskscreen.synth.generate import generate_cohort

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TITLE = "Kartläggning nyanlända, Exempelkommun"
SHEET = "Kartläggning"
KEY_FILE = "case-ref.key"
KEY_BYTES = 32  # written as 64 hex characters
# The template's lines the copy replaces, and with what.
SECRET_LINE = "secret_file:"
FILE_LINE = "  file:"
CSV_FILE_OPTIONS = "  file: {header_row: 1}   # the .csv: the column names are its first row"


def _git_work_tree(path: Path) -> Path | None:
    return next((p for p in (path, *path.parents) if (p / ".git").exists()), None)


def _write_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    """A workbook with one sheet per entry, in order; None leaves a cell empty."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def _write_key(out: Path) -> Path:
    """A new random key, readable by its owner only; an existing one is kept (same references)."""
    path = out / KEY_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as key:
            key.write(secrets.token_hex(KEY_BYTES) + "\n")
    return path


def _replace_line(text: str, prefix: str, line: str) -> str:
    lines = text.splitlines()
    found = [i for i, old in enumerate(lines) if old.startswith(prefix)]
    if len(found) != 1:
        raise ValueError(f"mapping.yaml template: expected one line starting {prefix!r}")
    lines[found[0]] = line
    return "\n".join(lines) + "\n"


def _write_mapping(out: Path, key: Path, file_format: str) -> Path:
    text = (HERE / "mapping.yaml").read_text(encoding="utf-8")
    text = _replace_line(text, SECRET_LINE, f"{SECRET_LINE} {key}")
    if file_format == "csv":
        text = _replace_line(text, FILE_LINE, CSV_FILE_OPTIONS)
    path = out / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _write_train_config(out: Path, intake: Path, outcomes: Path, mapping: Path) -> Path:
    """The repository's training config as it is today, with only the data section changed."""
    config = yaml.safe_load((REPO / "configs" / "train.yaml").read_text(encoding="utf-8"))
    config["data"] = {
        "source": "files",
        "intake_path": str(intake),
        "outcomes_path": str(outcomes),
        "mapping": str(mapping),
    }
    path = out / "train.yaml"
    header = "# configs/train.yaml with its data section pointing at the worked example's export\n"
    path.write_text(header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


def _write_intake(out: Path, table: pd.DataFrame, file_format: str) -> Path:
    if file_format == "csv":
        path = out / "kartlaggning.csv"
        table.to_csv(path, sep=";", index=False, encoding="cp1252")
        return path
    rows = [[None if pd.isna(c) else c for c in row] for row in table.itertuples(index=False)]
    about = [["Uttag ur verksamhetssystemet"], ["Kommun", "Exempelkommun"]]
    sheets = {"Om uttaget": about, SHEET: [[TITLE], list(table.columns), *rows]}
    return _write_xlsx(out / "kartlaggning.xlsx", sheets)


def make_export(out: Path, n: int, seed: int, file_format: str) -> dict[str, Path]:
    """Write every file of the example into `out` and return them by role.

    Raises:
        ValueError: `out` lies inside a git working tree.
    """
    out = out.expanduser().resolve()
    tree = _git_work_tree(out)
    if tree is not None:
        raise ValueError(
            f"{out} lies inside the git working tree {tree}: the export holds identity numbers "
            "and its key; write it outside any repository"
        )
    out.mkdir(parents=True, exist_ok=True)
    cohort = generate_cohort(n, seed)
    intake = cohort.intake
    outcomes = cohort.outcomes.set_index("case_ref").loc[intake["case_ref"]].reset_index()
    numbers = identity_numbers(intake["intake_date"].dt.date, intake["age"], intake["sex"])
    rng = np.random.default_rng([seed, 1])
    files = {"intake": _write_intake(out, intake_table(intake, numbers, rng), file_format)}
    files["outcomes"] = out / "utfall.csv"
    outcome_table(outcomes, numbers, rng).to_csv(
        files["outcomes"], sep=";", index=False, encoding="utf-8-sig"
    )
    unemployment_table(intake).to_csv(out / "arbetsloshet.csv", sep=";", index=False)
    files["lookup"] = out / "arbetsloshet.csv"
    files["key"] = _write_key(out)
    files["mapping"] = _write_mapping(out, files["key"], file_format)
    files["config"] = _write_train_config(out, files["intake"], files["outcomes"], files["mapping"])
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder outside any git repository")
    parser.add_argument("--n", type=int, default=3000, help="people in the cohort")
    parser.add_argument("--seed", type=int, default=11, help="same seed, same export")
    parser.add_argument("--format", choices=("xlsx", "csv"), default="xlsx", dest="file_format")
    args = parser.parse_args(argv)
    try:
        files = make_export(args.out_dir, args.n, args.seed, args.file_format)
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    sys.stdout.write("".join(f"{role:9s} {path}\n" for role, path in files.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
