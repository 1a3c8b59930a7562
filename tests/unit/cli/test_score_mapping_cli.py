"""`riskscreen score --mapping`: an export in the municipality's words scores exactly as the same
people in the contract's form; a model feature the mapping declares not recorded is refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from riskscreen.cli import app
from riskscreen.registry import Registration
from riskscreen.settings import Settings
from riskscreen.synth.generate import Cohort

ROWS = 40
MAPPING = """\
mapping_version: 1
intake:
  columns: {Ålder: age, Körkort: driving_licence}
  values:
    driving_licence: {Ja: true, Nej: false}
"""


def test_a_mapped_export_scores_as_its_contract_form(
    registered: tuple[Settings, Registration], small_cohort: Cohort, tmp_path: Path
) -> None:
    settings, _ = registered
    env = {"RISKSCREEN_DATA_DIR": str(settings.data_dir), "RISKSCREEN_AUDIT_URL": None}
    intake = small_cohort.intake.iloc[:ROWS]
    intake.to_parquet(tmp_path / "intake.parquet", index=False)
    export = intake.rename(columns={"age": "Ålder", "driving_licence": "Körkort"})
    export["Körkort"] = export["Körkort"].map({True: "Ja", False: "Nej"})
    export.to_csv(tmp_path / "export.csv", sep=";", index=False)
    (tmp_path / "mapping.yaml").write_text(MAPPING, encoding="utf-8")

    def score(*args: str) -> pd.DataFrame:
        out = tmp_path / f"scores-{len(args)}.parquet"
        result = CliRunner().invoke(app, ["score", *args, "--output", str(out)], env=env)
        assert result.exit_code == 0, result.output
        return pd.read_parquet(out)

    plain = score("--input", str(tmp_path / "intake.parquet"))
    mapped = score(
        "--input", str(tmp_path / "export.csv"), "--mapping", str(tmp_path / "mapping.yaml")
    )
    pd.testing.assert_frame_equal(mapped, plain)

    (tmp_path / "lacking.yaml").write_text(
        MAPPING.replace("Körkort: driving_licence", "Körkort: single_parent").replace(
            "driving_licence: {Ja", "single_parent: {Ja"
        )
        + "  not_recorded: [driving_licence]\n",
        encoding="utf-8",
    )
    export.drop(columns=["single_parent"]).to_csv(tmp_path / "export.csv", sep=";", index=False)
    result = CliRunner().invoke(
        app,
        ["score", "--input", str(tmp_path / "export.csv"), "--mapping",
         str(tmp_path / "lacking.yaml"), "--output", str(tmp_path / "never.parquet")],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "The model reads driving_licence, which the mapping declares not recorded" in (
        result.stderr
    )
    assert not (tmp_path / "never.parquet").exists()
