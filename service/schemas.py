"""Request and response bodies of the v1 API, derived from the package's declarations.

Input models forbid unknown fields; output models are what the OpenAPI document promises.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from riskscreen.contract.identity import checked, published_text_pattern
from riskscreen.contract.record import CaseRef, intake_record_model
from riskscreen.contract.schema import MAY_BE_UNKNOWN
from riskscreen.jobs.casework import REASON_CODES
from riskscreen.model.bundle import ModelBundle

MAX_BATCH = 100


# The comment rule as published in the JSON Schema: the identity guard's, tabs and line breaks
# allowed (tests/unit/contract/test_identity.py compares the two).
COMMENT_PUBLISHED_PATTERN = published_text_pattern(line_breaks=True)


def _plain_comment(value: str) -> str:
    return checked(value, line_breaks=True)


Comment = Annotated[
    str,
    Field(max_length=500, json_schema_extra={"pattern": COMMENT_PUBLISHED_PATTERN}),
    AfterValidator(_plain_comment),
]


_STRICT_IN = ConfigDict(extra="forbid", allow_inf_nan=False)


@dataclass(frozen=True)
class RequestModels:
    """The scoring bodies one model version accepts: its fields required, the others optional."""

    score: type[BaseModel]
    batch: type[BaseModel]


@functools.cache
def request_models(
    required: frozenset[str] | None = None, unknown: frozenset[str] = MAY_BE_UNKNOWN
) -> RequestModels:
    """Bodies for a version that uses `required` (None: the whole contract, every field
    explicit) and learned from unknown values of `unknown`. The service builds them from the
    served version at start-up and reload, so the published schema says what it needs."""
    score = create_model(
        "ScoreRequest",
        __config__=_STRICT_IN,
        case_ref=(
            CaseRef,
            Field(description="Opaque pseudonymous case reference (never a personal number)."),
        ),
        intake=(
            intake_record_model(required, unknown),
            Field(description="The intake mapping: every field the served model uses, explicit."),
        ),
    )
    batch = create_model(
        "BatchRequest",
        __config__=_STRICT_IN,
        records=(Annotated[list[score], Field(min_length=1, max_length=MAX_BATCH)], ...),
    )
    return RequestModels(score, batch)


def version_request_models(bundle: ModelBundle) -> RequestModels:
    """What a version needs in a request: the fields its model uses and the intake date, with
    null admitted only where it learned from unknown values."""
    required = frozenset(("intake_date", *bundle.spec.fields))
    return request_models(required, frozenset(bundle.unknown_fields))


ScoreRequest = request_models().score


class DecisionRequest(BaseModel):
    """The case manager's own decision, recorded beside the score."""

    model_config = _STRICT_IN
    support: Literal["intensified", "usual"]
    agrees_with_flag: Annotated[bool, Field(strict=True)]
    reason_code: Literal[REASON_CODES]  # type: ignore[valid-type]
    comment: Comment | None = None


class Contribution(BaseModel):
    field: str
    label: str
    value: Any
    contribution: float = Field(description="Contribution to the log-odds (exact TreeSHAP).")


HorizonMonths = Annotated[
    int,
    Field(
        description="The follow-up horizon: the score is the risk of no work or studies "
        "within this many months of intake."
    ),
]


class ModelInfo(BaseModel):
    name: str
    version: str
    data_kind: str
    trained_at: str
    horizon_months: HorizonMonths


class ScoreResponse(BaseModel):
    score_id: str
    case_ref: str
    probability: float
    log_odds: float
    base_log_odds: float
    band: Literal["low", "elevated", "high"]
    flagged: bool
    threshold: float
    contributions: list[Contribution]
    reasons: list[str]
    lang: Literal["sv", "en"]
    horizon_months: HorizonMonths
    model: ModelInfo
    audit_record_id: str
    created_at: str
    notice: str


class BatchResponse(BaseModel):
    scores: list[ScoreResponse]


class DecisionResponse(BaseModel):
    decision_id: str
    score_id: str
    support: Literal["intensified", "usual"]
    agrees_with_flag: bool
    reason_code: str
    recorded_at: str
    audit_record_id: str


class AuditRecordOut(BaseModel):
    seq: int
    record_id: str
    kind: str
    created_at: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    records: list[AuditRecordOut]
    next_after_seq: int | None = Field(
        description="Pass as after_seq for the next page; null at the end."
    )


class VerifyResponse(BaseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None
    head_seq: int | None
    head_hash: str | None


class FieldCheck(BaseModel):
    name: str
    logged: Any
    replayed: Any
    equal: bool


class ReplayResponse(BaseModel):
    record_id: str
    model_version: str
    matches: bool
    fields: list[FieldCheck]


class FeatureInfo(BaseModel):
    field: str
    label_sv: str
    label_en: str
    group: str


class GateOutcomeOut(BaseModel):
    """One gate as decided at registration: its statistic, interval and three-valued outcome."""

    name: str
    outcome: Literal["pass", "fail", "not_assessable"]
    statistic: str
    estimate: float | None
    low: float | None
    high: float | None
    criterion: str
    n: int
    level: float
    note: str


class Approval(BaseModel):
    """Who made a version champion although some gates could not be assessed, and why."""

    key_id: str
    role: str
    reason: str
    approved_at: str
    audit_record_id: str


class ModelResponse(BaseModel):
    name: str
    version: str
    data_kind: str
    trained_at: str
    horizon_months: HorizonMonths
    artifact_sha256: str
    threshold: float
    elevated_threshold: float
    metrics: dict[str, float]
    gates: dict[str, bool] = Field(description="Each gate: true only if it passed.")
    gate_outcomes: list[GateOutcomeOut] = Field(
        description="Each gate's outcome (pass, fail, not_assessable) with its interval; "
        "empty for versions registered before gates had three outcomes."
    )
    verdict: Literal["yes", "needs_approval", "no"] | None
    approval: Approval | None
    fairness_summary: dict[str, float]
    features: list[FeatureInfo]


class ScoringSwitch(BaseModel):
    model_config = _STRICT_IN
    enabled: Annotated[bool, Field(strict=True)]


class ScoringState(BaseModel):
    enabled: bool
    changed_at: datetime | None = None


class ReloadResponse(BaseModel):
    name: str
    version: str
    artifact_sha256: str


class Problem(BaseModel):
    """An error body: what went wrong, and for 422 which fields and which rule."""

    detail: str
    errors: list[dict[str, Any]] = []
