"""The one declaration of the intake and outcome data contract (shared/INTAKE_SCHEMA.md).

Everything that needs to know about a field (the API's pydantic record, the table validator,
the feature builder, the SHAP grouping and the reason texts) derives it from the tuples below,
so a field is added or changed in exactly one place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model

Kind = Literal["string", "date", "integer", "number", "boolean", "category"]
Role = Literal["key", "date", "feature", "audit"]

# 10 or 12 digits, optionally with "-", "+" or a space before the last four: the shapes of a
# Swedish personal or coordination number. Deliberately broad: rejecting an odd case reference
# costs a retype, storing an identity number is a GDPR breach.
_PERSONAL_NUMBER = re.compile(r"(?<!\d)(?:\d{6}|\d{8})[-+ ]?\d{4}(?!\d)")
CASE_REF_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# The same rule as published in the API's JSON Schema: CASE_REF_PATTERN minus whatever
# looks_like_personal_number finds (within that alphabet "+" and " " cannot occur). Validation
# runs the two checks apart, for a message that names the rule; tests/reliability keeps the
# published pattern equal to them.
CASE_REF_PUBLISHED_PATTERN = (
    r"^(?![A-Za-z0-9_-]*?(?<!\d)(?:\d{6}|\d{8})-?\d{4}(?!\d))[A-Za-z0-9_-]{1,64}$"
)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def looks_like_personal_number(text: str) -> bool:
    """True if `text` contains something shaped like a Swedish personal identity number."""
    return bool(_PERSONAL_NUMBER.search(text))


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

# What a case manager reads for each category value, (Swedish, English). SSYK groups and the
# sex field are shown as given.
CATEGORY_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "region_of_origin": {
        "middle_east": ("Mellanöstern", "Middle East"),
        "central_asia": ("Centralasien", "Central Asia"),
        "east_africa": ("Östafrika", "East Africa"),
        "other_africa": ("övriga Afrika", "other Africa"),
        "europe_non_eu": ("Europa utanför EU", "Europe outside the EU"),
        "other": ("annan", "other"),
    },
    "permit_type": {
        "quota_refugee": ("kvotflykting", "quota refugee"),
        "asylum": ("asyl", "asylum"),
        "family_reunification": ("anhöriginvandring", "family reunification"),
    },
    "education_level": {
        "none": ("ingen", "none"),
        "primary": ("grundskola, lägre", "primary"),
        "lower_secondary": ("grundskola", "lower secondary"),
        "upper_secondary": ("gymnasium", "upper secondary"),
        "post_secondary_short": ("eftergymnasial, kortare än 3 år", "post-secondary, short"),
        "post_secondary_long": ("eftergymnasial, 3 år eller längre", "post-secondary, long"),
    },
    "literacy": {
        "none": ("kan inte läsa och skriva", "cannot read and write"),
        "limited": ("begränsad", "limited"),
        "literate": ("läser och skriver", "reads and writes"),
    },
    "swedish_level": {
        "none": ("ingen", "none"),
        "sfi_a": ("sfi kurs A", "SFI course A"),
        "sfi_b": ("sfi kurs B", "SFI course B"),
        "sfi_c": ("sfi kurs C", "SFI course C"),
        "sfi_d": ("sfi kurs D", "SFI course D"),
        "sfi_completed": ("sfi avslutad", "SFI completed"),
    },
    "english_level": {
        "none": ("ingen", "none"),
        "basic": ("grundläggande", "basic"),
        "good": ("god", "good"),
    },
    "disability": {
        "none": ("ingen", "none"),
        "physical": ("fysisk", "physical"),
        "sensory": ("sensorisk", "sensory"),
        "cognitive": ("kognitiv", "cognitive"),
        "psychiatric": ("psykisk", "psychiatric"),
    },
    "municipality_type": {
        "metropolitan": ("storstad", "metropolitan"),
        "large_city": ("större stad", "large city"),
        "commuter": ("pendlingskommun", "commuter municipality"),
        "rural": ("landsbygdskommun", "rural municipality"),
    },
}

FIELDS_BY_NAME: dict[str, IntakeField] = {f.name: f for f in INTAKE_FIELDS}
GROUPS_BY_NAME: dict[str, Group] = {g.name: g for g in GROUPS}
DEFAULT_FEATURES: tuple[str, ...] = tuple(f.name for f in INTAKE_FIELDS if f.role == "feature")
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


# --- the pydantic record, derived from the declaration -------------------------------------


def _check_case_ref(value: str) -> str:
    if looks_like_personal_number(value):
        raise ValueError("looks like a personal identity number; use an opaque pseudonym")
    return value


def _iso_date_text(value: Any) -> Any:
    # pydantic reads "0" or 1700000000 as a Unix time even in strict mode; a date is YYYY-MM-DD.
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


def _integral(value: Any) -> Any:
    # JSON has one number type: 3.0 is the integer 3 (as JSON Schema says), 3.5 and "3" are not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _check_not_future(value: dt.date) -> dt.date:
    if value > dt.date.today():
        raise ValueError("intake_date lies in the future")
    return value


def _annotation(f: IntakeField) -> Any:
    """The pydantic type of one field: strict scalars, so "3" is not silently an integer."""
    base: Any
    if f.name == "case_ref":
        base = Annotated[
            str,
            Field(
                strict=True,
                pattern=CASE_REF_PATTERN,
                json_schema_extra={"pattern": CASE_REF_PUBLISHED_PATTERN},
            ),
            AfterValidator(_check_case_ref),
        ]
    elif f.kind == "date":
        base = Annotated[
            dt.date, BeforeValidator(_iso_date_text), AfterValidator(_check_not_future)
        ]
    elif f.kind == "integer":
        # The validator after Field: before it, pydantic would publish ge/le, not min/max.
        base = Annotated[
            int, Field(strict=True, ge=f.minimum, le=f.maximum), BeforeValidator(_integral)
        ]
    elif f.kind == "number":
        base = Annotated[float, Field(strict=True, ge=f.minimum, le=f.maximum, allow_inf_nan=False)]
    elif f.kind == "boolean":
        base = Annotated[bool, Field(strict=True)]
    elif f.kind == "category":
        base = Literal[f.categories]
    else:
        base = Annotated[str, Field(strict=True)]
    return base | None if f.nullable else base


def _field_info(f: IntakeField) -> Any:
    return Field(description=f"{f.label_en} / {f.label_sv}")


def _build_intake_model() -> type[BaseModel]:
    fields: dict[str, Any] = {
        f.name: (_annotation(f), _field_info(f)) for f in INTAKE_FIELDS if f.name != "case_ref"
    }
    return create_model(
        "IntakeRecord",
        __config__=ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False),
        __doc__="One intake mapping, without the case reference (which travels beside it).",
        **fields,
    )


IntakeRecord: type[BaseModel] = _build_intake_model()
CaseRef = _annotation(FIELDS_BY_NAME["case_ref"])
