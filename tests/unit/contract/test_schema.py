"""The one declaration: derived record model, identity-number rejection, labels."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from riskscreen.contract.identity import looks_like_personal_number
from riskscreen.contract.record import IntakeRecord
from riskscreen.contract.schema import FIELDS_BY_NAME, INTAKE_FIELDS, schema_hash
from riskscreen.contract.value_labels import CATEGORY_LABELS
from riskscreen.explain.reasons import GroupReason, reason_sentence

VALID = {
    "intake_date": "2021-03-04",
    "age": 30,
    "sex": None,
    "region_of_origin": "other",
    "permit_type": "asylum",
    "years_of_schooling": 9,
    "education_level": "lower_secondary",
    "literacy": "literate",
    "work_experience_years": 3,
    "occupation_group": "5",
    "swedish_level": "none",
    "english_level": "basic",
    "self_rated_health": 3,
    "depression_symptoms": True,
    "anxiety_symptoms": False,
    "ptsd_symptoms": False,
    "chronic_condition": False,
    "disability": "none",
    "children_under_6": 0,
    "children_6_to_17": 1,
    "single_parent": False,
    "driving_licence": True,
    "municipality_type": "rural",
    "local_unemployment_rate": 7.5,
}


@pytest.mark.parametrize(
    "text",
    [
        "198501011234",
        "19850101-1234",
        "850101-1234",
        "850101+1234",
        "8501011234",
        "ref_850101 1234",
    ],
)
def test_identity_number_shapes_are_recognised(text: str) -> None:
    assert looks_like_personal_number(text)


@pytest.mark.parametrize("text", ["S07-000000001", "case-123", "12345", "1234567890123"])
def test_other_references_pass(text: str) -> None:
    assert not looks_like_personal_number(text)


def test_record_is_derived_from_the_declaration() -> None:
    record = IntakeRecord.model_validate_json(json.dumps(VALID))
    assert set(type(record).model_fields) == {f.name for f in INTAKE_FIELDS} - {"case_ref"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("age", 17),
        ("age", 65),
        ("age", "30"),
        ("age", 30.5),
        ("self_rated_health", 0),
        ("depression_symptoms", "yes"),
        ("depression_symptoms", 1),
        ("disability", "unknown"),
        ("local_unemployment_rate", 40.1),
        ("intake_date", "2999-01-01"),
    ],
)
def test_bad_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        IntakeRecord.model_validate_json(json.dumps({**VALID, field: value}))
    assert info.value.errors()[0]["loc"] == (field,)


def test_unknown_and_missing_fields_are_rejected() -> None:
    with pytest.raises(ValidationError):
        IntakeRecord.model_validate_json(json.dumps({**VALID, "name": "Anna"}))
    missing = {k: v for k, v in VALID.items() if k != "single_parent"}
    with pytest.raises(ValidationError):
        IntakeRecord.model_validate_json(json.dumps(missing))
    for nan in ("NaN", "Infinity"):
        with pytest.raises(ValidationError):
            IntakeRecord.model_validate_json(json.dumps(VALID).replace("7.5", nan))


def test_category_labels_cover_declared_values() -> None:
    for field, labels in CATEGORY_LABELS.items():
        assert set(labels) == set(FIELDS_BY_NAME[field].categories), field


def test_reasons_read_in_swedish_and_english() -> None:
    reason = GroupReason("schooling", 0.4, ("years_of_schooling", "literacy"))
    values = {"years_of_schooling": 3, "literacy": "limited"}
    assert reason_sentence(reason, values, "sv") == (
        "Skolbakgrund höjde risken (År av skolgång: 3; Läs- och skrivförmåga: begränsad)."
    )
    assert reason_sentence(reason, values, "en") == (
        "Schooling raised the risk (Years of schooling: 3; Literacy: limited)."
    )
    lowering = GroupReason("language", -0.2, ("swedish_level",))
    assert "sänkte risken" in reason_sentence(lowering, {"swedish_level": "sfi_d"}, "sv")


def test_schema_hash_is_stable() -> None:
    assert schema_hash() == schema_hash() and len(schema_hash()) == 64
