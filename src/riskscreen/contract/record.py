"""The API's intake record, derived from the declaration in `schema`.

Strict scalars, the declared ranges and categories, ISO dates that are not in the future, and
no unknown field: a request body either is a valid intake mapping or is refused with a reason
that names the field. `case_ref` travels beside the record and is checked by `identity`.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model

from riskscreen.contract.identity import CASE_REF_PATTERN, CASE_REF_PUBLISHED_PATTERN, checked
from riskscreen.contract.schema import FIELDS_BY_NAME, INTAKE_FIELDS, MAY_BE_UNKNOWN, IntakeField

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _check_case_ref(value: str) -> str:
    return checked(value, reference=True)


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


def _not_unknown_here(value: Any) -> Any:
    if value is None:
        raise ValueError(
            "may not be unknown (null) for the served model version: it learned from no unknown "
            "values of this field; give the value"
        )
    return value


def _annotation(f: IntakeField, unknown_ok: bool = False) -> Any:
    """The pydantic type of one field: strict scalars, so "3" is not silently an integer.

    `unknown_ok` admits an explicit null for a field the declaration lets be unknown; where it
    is not admitted the refusal says why, rather than "not a valid integer"."""
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
    if f.nullable or unknown_ok:
        return base | None
    if f.may_be_unknown:
        return Annotated[base, BeforeValidator(_not_unknown_here)]
    return base


def _field_info(f: IntakeField, required: bool, unknown_ok: bool) -> Any:
    description = f"{f.label_en} / {f.label_sv}"
    if unknown_ok:
        description += " (null: not known for this person)"
    if required:
        return Field(description=description)
    return Field(
        default=None,
        description=f"{description}. Not used by the served model: may be left out, and is "
        "ignored and not stored when sent.",
    )


@functools.cache
def intake_record_model(
    required: frozenset[str] | None = None, unknown: frozenset[str] = MAY_BE_UNKNOWN
) -> type[BaseModel]:
    """The intake record with `required` fields explicit (None: every field) and every other
    field optional; `unknown` are the fields that may be null as "not known".

    A model version that does not use a field (its municipality does not record it) must not
    make a client invent it; a client that sends it anyway keeps working, and the value is
    still checked against the contract but goes nowhere. Built once per set of fields.
    """
    fields: dict[str, Any] = {}
    for f in INTAKE_FIELDS:
        if f.name == "case_ref":
            continue
        needed = required is None or f.name in required
        unknown_ok = f.name in unknown and f.may_be_unknown
        annotation = _annotation(f, unknown_ok)
        fields[f.name] = (
            annotation if needed else annotation | None,
            _field_info(f, needed, unknown_ok),
        )
    return create_model(
        "IntakeRecord",
        __config__=ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False),
        __doc__="One intake mapping, without the case reference (which travels beside it).",
        **fields,
    )


IntakeRecord: type[BaseModel] = intake_record_model()
CaseRef = _annotation(FIELDS_BY_NAME["case_ref"])
