"""The report's section for a model trained elsewhere and recalibrated here.

An auditor must see that the version was not trained on this municipality's data, where it came
from (the archive's SHA-256 and the imported bundle's own provenance), what was fitted here
(the local map on its log-odds, on which people) and whether a model trained here would serve
better (the local-vs-imported backtest). Everything is read from the bundle's provenance, where
`model.imported` recorded it, so the report of a registered version can always be rebuilt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from riskscreen.model.imported import DESIGN

if TYPE_CHECKING:
    from riskscreen.model.pipeline import TrainingResult

# The imported bundle's provenance entries shown, in this order, when present.
SOURCE_KEYS: tuple[tuple[str, str], ...] = (
    ("model_name", "Model name"),
    ("run_id", "MLflow run (at the source)"),
    ("trained_at", "Trained at"),
    ("data_kind", "Data kind"),
    ("data_sha256", "Training data (SHA-256)"),
    ("schema_sha256", "Intake schema (SHA-256)"),
    ("horizon_months", "Horizon (months)"),
    ("support_handling", "Support handling"),
    ("train_years", "Intake years"),
)


def imported_section(result: TrainingResult) -> dict[str, Any] | None:
    """Source, recalibration and backtest of an imported model; None for a model trained here."""
    prov = result.bundle.provenance
    if prov.get("design") != DESIGN or "source" not in prov:
        return None
    source, rec = prov["source"], prov["recalibration"]
    origin = source.get("provenance", {})
    exported = origin.get("exported_from", {})
    rows = [
        ("Archive (SHA-256 of the file, checked before it was opened)", source["archive_sha256"])
    ]
    if exported:
        rows.append(
            (
                "Exported from",
                f"{exported.get('model_name')} version {exported.get('version')} "
                f"(artifacts SHA-256 {exported.get('artifact_sha256')}; verdict of its gates "
                f"there: {exported.get('verdict', 'not recorded')})",
            )
        )
    rows += [(label, _text(origin[key])) for key, label in SOURCE_KEYS if key in origin]
    # Versions trained before designs were named were trained by the split design.
    rows.append(("Design, family", f"{origin.get('design', 'split')}, {source['family']}"))
    first, served = source["calibration"], rec["served_calibration"]
    backtest = rec["backtest"]
    return {
        "source": rows,
        "calibration": {
            "source": f"{first['slope']:.4f} × raw {first['intercept']:+.4f}",
            "local": f"{rec['slope']:.4f} × imported {rec['intercept']:+.4f}",
            "served": f"{served['slope']:.4f} × raw {served['intercept']:+.4f}",
        },
        "recalibration": {
            "data_sha256": rec["data_sha256"],
            "n_labelled": f"{rec['n_labelled']:,}",
            "years": _text(rec["years"]),
            "test_years": _text(rec["test_years"]),
        },
        "backtest": [_backtest_row(r) for r in backtest["rows"]],
        "local_family": backtest["local_family"],
        "sentence": backtest["sentence"],
        "verdict": backtest["verdict"],
    }


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "–"
    return str(value)


def _backtest_row(row: dict[str, Any]) -> dict[str, str]:
    return {
        "period": str(row["period"]),
        "n": f"{row['n']:,}",
        "auc_imported": f"{row['auc_imported']:.4f}",
        "auc_local": f"{row['auc_local']:.4f}",
        "auc_gain": f"{row['auc_gain']:+.4f} ± {row['auc_gain_se']:.4f}",
        "log_loss_imported": f"{row['log_loss_imported']:.4f}",
        "log_loss_local": f"{row['log_loss_local']:.4f}",
        "log_loss_gain": f"{row['log_loss_gain']:+.4f} ± {row['log_loss_gain_se']:.4f}",
    }
