"""The API and `riskscreen score` share one arithmetic: the same intake, the same numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from http_support import Service, score_body
from typer.testing import CliRunner

from riskscreen.cli import app as cli
from riskscreen.registry import Registration
from riskscreen.settings import Settings
from riskscreen.synth.generate import Cohort

ROWS = 80


def test_api_and_batch_scoring_give_identical_numbers(
    service: Service,
    small_cohort: Cohort,
    registered: tuple[Settings, Registration],
    tmp_path: Path,
) -> None:
    settings, _ = registered
    intake = small_cohort.intake.iloc[1000 : 1000 + ROWS]
    intake.to_parquet(tmp_path / "intake.parquet", index=False)
    result = CliRunner().invoke(
        cli,
        [
            "score",
            "--input",
            str(tmp_path / "intake.parquet"),
            "--output",
            str(tmp_path / "s.parquet"),
        ],
        env={"RISKSCREEN_DATA_DIR": str(settings.data_dir), "RISKSCREEN_AUDIT_URL": None},
    )
    assert result.exit_code == 0, result.output
    batch = pd.read_parquet(tmp_path / "s.parquet")
    assert len(batch) == ROWS

    bodies = [score_body(r) for r in intake.to_dict(orient="records")]
    api: list[dict[str, Any]] = []
    for start in range(0, ROWS, 40):
        response = service.client.post(
            "/v1/scores/batch",
            json={"records": bodies[start : start + 40]},
            headers=service.auth("cm"),
        )
        assert response.status_code == 201, response.text
        api.extend(response.json()["scores"])
    api.append(service.score(bodies[-1]))  # the one-record path, too

    rows = batch.set_index("case_ref")
    assert rows.index.is_unique
    for score in api:
        row = rows.loc[score["case_ref"]]
        assert row["model_version"] == score["model"]["version"]
        for name in ("probability", "log_odds", "base_log_odds"):
            assert row[name] == score[name], name  # exact, not approximately
        assert (str(row["band"]), bool(row["flagged"])) == (score["band"], score["flagged"])
        for c in score["contributions"]:
            assert row[f"contribution_{c['field']}"] == c["contribution"], c["field"]


def test_a_table_may_leave_out_what_the_model_does_not_read(
    small_cohort: Cohort, registered: tuple[Settings, Registration], tmp_path: Path
) -> None:
    """As the API does: sex and region of origin are never features, so a table without them
    scores; a table without a field the model reads names it and writes nothing."""
    settings, _ = registered
    env = {"RISKSCREEN_DATA_DIR": str(settings.data_dir), "RISKSCREEN_AUDIT_URL": None}
    intake = small_cohort.intake.iloc[:20]
    runs = {}
    for name, frame in (
        ("without_audit_fields", intake.drop(columns=["sex", "region_of_origin"])),
        ("without_a_feature", intake.drop(columns=["disability"])),
    ):
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
        out = tmp_path / f"{name}-scores.parquet"
        args = ["score", "--input", str(tmp_path / f"{name}.parquet"), "--output", str(out)]
        runs[name] = (CliRunner().invoke(cli, args, env=env), out)
    done, out = runs["without_audit_fields"]
    assert done.exit_code == 0, done.output
    scores = pd.read_parquet(out)
    assert len(scores) == 20 and set(scores["horizon_months"]) == {24}
    refused, out = runs["without_a_feature"]
    assert refused.exit_code == 1 and "column disability" in refused.output
    assert not out.exists()
