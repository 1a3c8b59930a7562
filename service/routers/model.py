"""What model is in service and how it was judged (`/v1/model`)."""

from __future__ import annotations

import json

from fastapi import APIRouter

from riskscreen.contract.schema import FIELDS_BY_NAME
from service.deps import AnyRole, State
from service.openapi import AUTH, UNAVAILABLE
from service.schemas import FeatureInfo, GateOutcomeOut, ModelResponse

router = APIRouter(prefix="/v1/model", tags=["model"])


@router.get("", response_model=ModelResponse, responses={**AUTH, **UNAVAILABLE})
def describe(_: AnyRole, state: State) -> ModelResponse:
    """Version, test metrics, gates, fairness summary and the features in use."""
    loaded, metrics = state.model.loaded, state.model.metrics
    prov, b = loaded.bundle.provenance, loaded.bundle
    return ModelResponse(
        name=loaded.name,
        version=loaded.version,
        data_kind=str(prov.get("data_kind", "")),
        trained_at=str(prov.get("trained_at", "")),
        horizon_months=b.horizon_months,
        artifact_sha256=loaded.artifact_sha256,
        threshold=b.thresholds.flag,
        elevated_threshold=b.thresholds.elevated,
        metrics={k: v for k, v in metrics.items() if k.startswith("test_")},
        gates=json.loads(loaded.tags.get("gates", "{}")),
        gate_outcomes=[
            GateOutcomeOut.model_validate(o)
            for o in json.loads(loaded.tags.get("gate_outcomes", "[]"))
        ],
        verdict=loaded.tags.get("verdict"),
        approval=json.loads(loaded.tags["approval"]) if "approval" in loaded.tags else None,
        fairness_summary={k: v for k, v in metrics.items() if k.startswith("test_tpr_ratio_")},
        features=[
            FeatureInfo(
                field=f,
                label_sv=FIELDS_BY_NAME[f].label_sv,
                label_en=FIELDS_BY_NAME[f].label_en,
                group=FIELDS_BY_NAME[f].group,
            )
            for f in b.spec.fields
        ],
    )
