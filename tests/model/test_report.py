"""The HTML model report on a real (small) trained model: content an auditor relies on.

One synthetic and one "real" (no oracle) training run are shared by the module; each test
reads the written files, so a regression in the template or in the numbers it is fed shows up
as missing content, not only as a crash.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from riskscreen.contract.schema import FIELDS_BY_NAME
from riskscreen.model.config import TrainConfig
from riskscreen.model.pipeline import TrainingResult, run_training
from riskscreen.model.training_data import TrainingData
from riskscreen.reports.report import write_report
from riskscreen.synth.generate import Cohort, generate_cohort

DATA_CARD = "# Data card\n\nTest cohort for the report. <script>alert('x')</script>\n"
MAX_BYTES = 3 * 1024 * 1024
FIXED_PLOTS = 7  # calibration, ROC, PR, capacity, candidates, importance, beeswarm


@dataclass(frozen=True)
class Written:
    result: TrainingResult
    cfg: TrainConfig
    path: Path
    html: str
    global_state_kept: bool = True


@pytest.fixture(scope="module")
def cfg() -> TrainConfig:
    return TrainConfig(
        config_version=2,
        design={"kind": "split"},
        model={"candidates": [{"num_trees": 50, "num_leaves": 7}]},
        fairness={"bootstrap": 20, "min_group_size": 50},
    )


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    return generate_cohort(30_000, 7)


@pytest.fixture(scope="module")
def synthetic(
    cohort: Cohort, cfg: TrainConfig, tmp_path_factory: pytest.TempPathFactory
) -> Written:
    result = run_training(
        TrainingData(cohort.intake, cohort.outcomes, cohort.oracle, "synthetic"), cfg
    )
    # The pipeline keeps the oracle's metrics but not its probabilities; the report draws the
    # oracle's curves when the test frame carries them.
    result.test_frame["oracle"] = (
        result.test_frame[["case_ref"]]
        .merge(cohort.oracle, on="case_ref", how="left")["p_long_settlement"]
        .to_numpy()
    )
    path = tmp_path_factory.mktemp("report") / "synthetic.html"
    backend, rng = matplotlib.get_backend(), np.random.get_state()[1].copy()
    write_report(result, cfg, path, model_name="riskscreen", version="7", data_card=DATA_CARD)
    kept = matplotlib.get_backend() == backend and np.array_equal(np.random.get_state()[1], rng)
    return Written(result, cfg, path, path.read_text(encoding="utf-8"), kept)


@pytest.fixture(scope="module")
def real(cohort: Cohort, cfg: TrainConfig, tmp_path_factory: pytest.TempPathFactory) -> Written:
    result = run_training(TrainingData(cohort.intake, cohort.outcomes, None, "real"), cfg)
    path = tmp_path_factory.mktemp("report") / "nested" / "real.html"
    write_report(result, cfg, path, model_name="riskscreen")
    return Written(result, cfg, path, path.read_text(encoding="utf-8"))


def _expected(name: str, value: float) -> str:
    """How a logged metric must be printed (independent of the report's own formatter)."""
    if math.isnan(value):
        return "not assessable"
    return f"{value:,.0f}" if name == "test_n" else f"{value:.4f}"


def _section(html: str, pattern: str) -> str:
    match = re.search(pattern, html, re.S)
    assert match, f"no match for {pattern!r}"
    return match.group(1)


def _used_fields(result: TrainingResult) -> list[str]:
    used = np.any(result.test_contributions != 0, axis=0)
    return [f for f, u in zip(result.bundle.spec.fields, used, strict=True) if u]


@pytest.mark.parametrize("which", ["synthetic", "real"])
def test_report_is_one_self_contained_file(which: str, request: pytest.FixtureRequest) -> None:
    written: Written = request.getfixturevalue(which)
    assert written.path.is_file()
    assert 0 < written.path.stat().st_size < MAX_BYTES
    html = written.html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"<script|<link|@import|url\(", html, re.I)
    sources = re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", html)
    assert len(sources) == html.count("<img")
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True)[:8] == b"\x89PNG\r\n\x1a\n"


def test_header_names_the_model_and_warns_about_synthetic_data(
    synthetic: Written, real: Written
) -> None:
    html = synthetic.html
    assert "SYNTHETIC DATA" in html and 'id="synthetic-warning"' in html
    for key in ("data_sha256", "schema_sha256"):
        assert synthetic.result.provenance[key] in html
    assert "<dd>7</dd>" in html and "24 months from intake" in html
    assert "SYNTHETIC DATA" not in real.html and "<strong>real</strong>" in real.html
    assert "not registered yet" in real.html


def test_intended_and_forbidden_uses_are_stated(synthetic: Written) -> None:
    intended = _section(synthetic.html, r'id="intended-use">(.*?)</div>')
    forbidden = _section(synthetic.html, r'id="forbidden-uses">(.*?)</div>')
    for phrase in (
        "intensified early support",
        "The case manager decides",
        "A flag means more support, never less",
    ):
        assert phrase in intended
    for phrase in (
        "Denying, reducing",
        "residence-permit",
        "outside the intake population",
        "Automated decisions without a case manager",
        "evidence about a person",
    ):
        assert phrase in forbidden


def test_data_card_is_shown_escaped_with_the_label_definition(synthetic: Written) -> None:
    html = synthetic.html
    card = _section(html, r'<pre class="card" id="data-card">(.*?)</pre>')
    assert "Test cohort for the report." in card
    assert "&lt;script&gt;" in card
    for status, count in synthetic.result.label_counts.items():
        assert re.search(rf"<code>{status}</code></td><td class=\"num\">{count:,}</td>", html)
    for name, size in synthetic.result.split_sizes.items():
        years = ", ".join(str(y) for y in getattr(synthetic.result.split, name))
        assert f'<td>{name}</td><td>{years}</td><td class="num">{size:,}</td>' in html
    assert "support_handling: exclude" in html and "IPCW" in html


def test_every_logged_test_metric_is_printed(synthetic: Written) -> None:
    metrics = synthetic.result.evaluation.metrics
    assert any(k.startswith("test_oracle_") for k in metrics)
    for name, value in metrics.items():
        expected = _expected(name, value)
        assert f'<code>{name}</code></td><td class="num">{expected}</td>' in synthetic.html, name
    table = _section(synthetic.html, r'<table id="metrics-table">(.*?)</table>')
    for header in ("Model", "Checklist baseline", "Logistic regression", "Oracle"):
        assert f"<th>{header}" in table
    for name in (
        "test_roc_auc",
        "test_pr_auc",
        "test_brier",
        "test_ece",
        "test_recall_at_capacity",
        "test_precision_at_capacity",
        "test_share_flagged",
        "test_checklist_roc_auc",
        "test_logreg_roc_auc",
        "test_oracle_roc_auc",
    ):
        assert f'{_expected(name, metrics[name])}<code class="metric-name">{name}</code>' in table


def test_fairness_tables_show_every_group_and_suppress_small_ones(synthetic: Written) -> None:
    fairness = synthetic.result.evaluation.fairness
    assert set(fairness) == {"sex", "age_band", "region_of_origin", "disability", "permit_type"}
    assert any(t["too_small"].any() for t in fairness.values()), "fixture needs a small group"
    for attr, table in fairness.items():
        body = _section(
            synthetic.html,
            rf'<table class="fairness" data-attribute="{attr}">(.*?)'
            r"</table>",
        )
        for group, row in table.iterrows():
            cells = _section(body, rf'data-group="{re.escape(str(group))}">(.*?)</tr>')
            assert ('<span class="badge">reference</span>' in cells) == bool(row["reference"])
            if row["too_small"]:
                assert "too small" in cells
                assert not re.search(r"\d\.\d", cells) and f">{int(row['size'])}<" not in cells
            else:
                assert f"{int(row['size']):,}" in cells
                for metric in (
                    "selection_rate",
                    "tpr",
                    "fpr",
                    "precision",
                    "mean_predicted",
                    "observed_rate",
                ):
                    assert (
                        f'{row[metric]:.3f} <span class="ci">[{row[metric + "_lo"]:.3f}, '
                        f"{row[metric + '_hi']:.3f}]</span>" in cells
                    ), (attr, group, metric)
        summary = _section(
            synthetic.html,
            rf'<ul class="fairness-summary" '
            rf'data-attribute="{attr}">(.*?)</ul>',
        )
        metrics = synthetic.result.evaluation.metrics
        for name in (
            f"test_tpr_ratio_{attr}",
            f"test_checklist_tpr_ratio_{attr}",
            f"test_oracle_tpr_ratio_{attr}",
            f"test_calibration_gap_{attr}",
        ):
            value = _expected(name, metrics[name])
            assert f"<code>{name}</code>: <strong>{value}</strong>" in summary


def test_gates_are_shown_with_their_outcome(synthetic: Written) -> None:
    table = _section(synthetic.html, r'<table id="gates-table">(.*?)</table>')
    shown = {"pass": "PASS", "fail": "FAIL", "not_assessable": "NOT ASSESSABLE"}
    for gate in synthetic.result.gate_outcomes:
        row = _section(table, rf"<code>{gate.name}</code>(.*?)</tr>")
        assert shown[gate.outcome] in row
        assert all(text not in row for o, text in shown.items() if o != gate.outcome)
        assert html.escape(gate.criterion) in row
    outcome = _section(synthetic.html, r'<p id="gate-outcome">(.*?)</p>')
    verdict = {"yes": "PASS", "no": "FAIL", "needs_approval": "APPROVAL NEEDED"}
    assert verdict[synthetic.result.verdict] in outcome


def test_plots_and_explanations(synthetic: Written) -> None:
    result, html = synthetic.result, synthetic.html
    used = _used_fields(result)
    assert len(used) >= 10
    assert html.count("<img") == FIXED_PLOTS + len(used)
    dependence = _section(html, r'<div class="dep" id="dependence">(.*?)</div>')
    assert dependence.count("<img") == len(used)
    for name in used:
        assert f'alt="dependence: {FIELDS_BY_NAME[name].label_en}"' in dependence
    for alt in (
        "calibration curve",
        "ROC curves",
        "precision-recall curves",
        "capacity curve",
        "capacity candidates",
        "SHAP summary (beeswarm)",
    ):
        assert f'alt="{alt}"' in html
    error = float(_section(html, r"served log-odds\| is at most\s+(\d\.\de[+-]\d+)"))
    assert error < 1e-6


def test_limitations_name_the_special_category_fields(synthetic: Written) -> None:
    limits = _section(synthetic.html, r'<section id="limitations">(.*?)</section>')
    for phrase in (
        "Synthetic calibration sources",
        "Temporal drift",
        "Selective labels",
        "Censoring assumption",
        "proxies",
        "resource decision",
    ):
        assert phrase in limits
    for name in synthetic.result.bundle.spec.fields:
        field = FIELDS_BY_NAME[name]
        if field.special_category:
            assert field.label_en in limits


def test_real_data_without_oracle_omits_the_oracle(real: Written) -> None:
    metrics = real.result.evaluation.metrics
    assert not any(k.startswith("test_oracle_") for k in metrics)
    html = real.html
    assert "Oracle" not in html and "test_oracle" not in html
    assert "Synthetic calibration sources" not in html
    for name, value in metrics.items():
        assert f'<code>{name}</code></td><td class="num">{_expected(name, value)}</td>' in html
    assert html.count("<img") == FIXED_PLOTS + len(_used_fields(real.result))


def test_writing_a_report_leaves_global_state_alone(synthetic: Written) -> None:
    """No backend switch, no consumed global random draws, no pyplot figures left open."""
    import matplotlib.pyplot as plt

    assert synthetic.global_state_kept
    assert plt.get_fignums() == []


def test_backtest_shows_every_predicted_year_and_the_truth_on_synthetic_data(
    synthetic: Written, real: Written
) -> None:
    for written in (synthetic, real):
        table = _section(written.html, r'<table id="backtest">(.*?)</table>')
        test = written.result.test_frame
        years = sorted(test["intake_date"].dt.year.unique())
        cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in table.split("<tr>")[2:]]
        assert [c[0] for c in cells] == [str(y) for y in years] + ["all years"]
        pooled = cells[-1]
        assert pooled[1] == f"{len(test):,}"
        auc = roc_auc_score(test["y"], test["probability"], sample_weight=test["weight"])
        assert pooled[4] == f"{auc:.3f}"
        low, high = (float(v) for v in pooled[5].split("–"))
        assert low < auc < high
    metrics = synthetic.result.evaluation.metrics
    pooled = re.findall(r"<td[^>]*>(.*?)</td>", synthetic.html.split('id="backtest"')[1])
    assert f"{metrics['test_share_of_achievable']:.3f}" in pooled
    assert "share of the achievable ranking" in synthetic.html.split('id="backtest"')[1]
    assert "share of the achievable ranking" not in real.html.split('id="backtest"')[1][:2000]
