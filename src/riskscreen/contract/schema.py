"""The one declaration of the intake and outcome data contract (shared/INTAKE_SCHEMA.md).

Everything that needs to know about a field (the API's pydantic record in `record`, the table
validator, the feature builder, the SHAP grouping and the reason texts) derives it from the
tuples below, so a field is added or changed in exactly one place. The words shown for each
category value live in `value_labels`; the identity-number guard in `identity`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal

Kind = Literal["string", "date", "integer", "number", "boolean", "category"]
Role = Literal["key", "date", "feature", "audit"]


@dataclass(frozen=True)
class Group:
    """An explanation group: the unit a case manager reasons in ("schooling", "health")."""

    name: str
    label_sv: str
    label_en: str


@dataclass(frozen=True)
class IntakeField:
    """One intake field. `role == "feature"` means the model may use it by default."""

    name: str
    kind: Kind
    label_sv: str
    label_en: str
    role: Role
    group: str = ""
    categories: tuple[str, ...] = ()
    ordered: bool = False
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    sensitive: bool = False
    special_category: bool = False
    # Expected direction of the risk of long settlement as the value grows (for ordered
    # categories: along `categories`). Used as a monotone constraint in training, so that
    # "more schooling never raises the risk" holds by construction, not by luck.
    monotone: Literal[-1, 0, 1] = 0
    # Whether the answer may be unknown for one person (explicit null: the screen was not done,
    # the person could not say). An unknown is then a value of its own that a model learns
    # from, never imputed; a version accepts it only for fields it saw unknown in training.
    may_be_unknown: bool = False


GROUPS: tuple[Group, ...] = (
    Group("age", "Ålder", "Age"),
    Group("permit", "Grund för uppehållstillstånd", "Residence permit"),
    Group("schooling", "Skolbakgrund", "Schooling"),
    Group("work", "Arbetslivserfarenhet", "Work experience"),
    Group("language", "Språkkunskaper", "Language skills"),
    Group("health", "Hälsa", "Health"),
    Group("disability", "Funktionsnedsättning", "Disability"),
    Group("family", "Familjesituation", "Family situation"),
    Group("licence", "Körkort", "Driving licence"),
    Group("labour_market", "Lokal arbetsmarknad", "Local labour market"),
)

EDUCATION_LEVELS = (
    "none",
    "primary",
    "lower_secondary",
    "upper_secondary",
    "post_secondary_short",
    "post_secondary_long",
)
SWEDISH_LEVELS = ("none", "sfi_a", "sfi_b", "sfi_c", "sfi_d", "sfi_completed")

INTAKE_FIELDS: tuple[IntakeField, ...] = (
    IntakeField("case_ref", "string", "Ärendereferens", "Case reference", "key"),
    IntakeField("intake_date", "date", "Datum för kartläggning", "Intake date", "date"),
    IntakeField(
        "age",
        "integer",
        "Ålder",
        "Age",
        "feature",
        "age",
        minimum=18,
        maximum=64,
        sensitive=True,
        monotone=1,
    ),
    IntakeField(
        "sex",
        "category",
        "Kön",
        "Sex",
        "audit",
        categories=("female", "male", "other"),
        nullable=True,
        sensitive=True,
    ),
    IntakeField(
        "region_of_origin",
        "category",
        "Ursprungsregion",
        "Region of origin",
        "audit",
        categories=(
            "middle_east",
            "central_asia",
            "east_africa",
            "other_africa",
            "europe_non_eu",
            "other",
        ),
        nullable=True,
        sensitive=True,
    ),
    IntakeField(
        "permit_type",
        "category",
        "Grund för uppehållstillstånd",
        "Residence permit",
        "feature",
        "permit",
        categories=("quota_refugee", "asylum", "family_reunification"),
    ),
    IntakeField(
        "years_of_schooling",
        "integer",
        "År av skolgång",
        "Years of schooling",
        "feature",
        "schooling",
        minimum=0,
        maximum=25,
        monotone=-1,
        may_be_unknown=True,
    ),
    IntakeField(
        "education_level",
        "category",
        "Högsta utbildningsnivå",
        "Education level",
        "feature",
        "schooling",
        categories=EDUCATION_LEVELS,
        ordered=True,
        monotone=-1,
        may_be_unknown=True,
    ),
    IntakeField(
        "literacy",
        "category",
        "Läs- och skrivförmåga",
        "Literacy",
        "feature",
        "schooling",
        categories=("none", "limited", "literate"),
        ordered=True,
        monotone=-1,
        may_be_unknown=True,
    ),
    IntakeField(
        "work_experience_years",
        "number",
        "År av arbetslivserfarenhet",
        "Years of work experience",
        "feature",
        "work",
        minimum=0,
        maximum=50,
        monotone=-1,
        may_be_unknown=True,
    ),
    IntakeField(
        "occupation_group",
        "category",
        "Yrkesområde (SSYK)",
        "Occupation group (SSYK)",
        "feature",
        "work",
        categories=tuple(str(i) for i in range(10)),
        nullable=True,
    ),
    IntakeField(
        "swedish_level",
        "category",
        "Svenska vid kartläggning",
        "Swedish at intake",
        "feature",
        "language",
        categories=SWEDISH_LEVELS,
        ordered=True,
        monotone=-1,
    ),
    IntakeField(
        "english_level",
        "category",
        "Engelska",
        "English",
        "feature",
        "language",
        categories=("none", "basic", "good"),
        ordered=True,
        monotone=-1,
        may_be_unknown=True,
    ),
    IntakeField(
        "self_rated_health",
        "integer",
        "Självskattad hälsa",
        "Self-rated health",
        "feature",
        "health",
        minimum=1,
        maximum=5,
        special_category=True,
        monotone=-1,
        may_be_unknown=True,
    ),
    IntakeField(
        "depression_symptoms",
        "boolean",
        "Depressionssymtom",
        "Depression symptoms",
        "feature",
        "health",
        special_category=True,
        monotone=1,
        may_be_unknown=True,
    ),
    IntakeField(
        "anxiety_symptoms",
        "boolean",
        "Ångestsymtom",
        "Anxiety symptoms",
        "feature",
        "health",
        special_category=True,
        monotone=1,
        may_be_unknown=True,
    ),
    IntakeField(
        "ptsd_symptoms",
        "boolean",
        "Symtom på posttraumatisk stress",
        "PTSD symptoms",
        "feature",
        "health",
        special_category=True,
        monotone=1,
        may_be_unknown=True,
    ),
    IntakeField(
        "chronic_condition",
        "boolean",
        "Långvarig sjukdom",
        "Chronic condition",
        "feature",
        "health",
        special_category=True,
        monotone=1,
        may_be_unknown=True,
    ),
    IntakeField(
        "disability",
        "category",
        "Funktionsnedsättning",
        "Disability",
        "feature",
        "disability",
        categories=("none", "physical", "sensory", "cognitive", "psychiatric"),
        sensitive=True,
        special_category=True,
        may_be_unknown=True,
    ),
    IntakeField(
        "children_under_6",
        "integer",
        "Barn under 6 år",
        "Children under 6",
        "feature",
        "family",
        minimum=0,
        maximum=10,
    ),
    IntakeField(
        "children_6_to_17",
        "integer",
        "Barn 6-17 år",
        "Children 6-17",
        "feature",
        "family",
        minimum=0,
        maximum=15,
    ),
    IntakeField(
        "single_parent", "boolean", "Ensamstående förälder", "Single parent", "feature", "family"
    ),
    IntakeField(
        "driving_licence",
        "boolean",
        "Körkort",
        "Driving licence",
        "feature",
        "licence",
        monotone=-1,
        may_be_unknown=True,
    ),
    IntakeField(
        "municipality_type",
        "category",
        "Kommuntyp",
        "Municipality type",
        "feature",
        "labour_market",
        categories=("metropolitan", "large_city", "commuter", "rural"),
    ),
    IntakeField(
        "local_unemployment_rate",
        "number",
        "Lokal arbetslöshet (%)",
        "Local unemployment rate (%)",
        "feature",
        "labour_market",
        minimum=0,
        maximum=40,
        monotone=1,
    ),
)

FIELDS_BY_NAME: dict[str, IntakeField] = {f.name: f for f in INTAKE_FIELDS}
GROUPS_BY_NAME: dict[str, Group] = {g.name: g for g in GROUPS}
DEFAULT_FEATURES: tuple[str, ...] = tuple(f.name for f in INTAKE_FIELDS if f.role == "feature")
MAY_BE_UNKNOWN: frozenset[str] = frozenset(f.name for f in INTAKE_FIELDS if f.may_be_unknown)
SENSITIVE_AUDIT_FIELDS: tuple[str, ...] = tuple(f.name for f in INTAKE_FIELDS if f.role == "audit")
INTAKE_COLUMNS: tuple[str, ...] = tuple(f.name for f in INTAKE_FIELDS)


@dataclass(frozen=True)
class OutcomeField:
    """One field of the follow-up (outcome) table."""

    name: str
    kind: Kind
    nullable: bool = False


OUTCOME_FIELDS: tuple[OutcomeField, ...] = (
    OutcomeField("case_ref", "string"),
    OutcomeField("settled_date", "date", nullable=True),
    OutcomeField("lost_to_followup_date", "date", nullable=True),
    OutcomeField("received_intensified_support", "boolean"),
    OutcomeField("extract_date", "date"),
)
OUTCOME_COLUMNS: tuple[str, ...] = tuple(f.name for f in OUTCOME_FIELDS)


def schema_hash() -> str:
    """SHA-256 of the declaration, recorded with every model so a schema change is visible."""
    payload = {
        "groups": [asdict(g) for g in GROUPS],
        "intake": [asdict(f) for f in INTAKE_FIELDS],
        "outcome": [asdict(f) for f in OUTCOME_FIELDS],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
