"""The hostile request corpus: each case says what it sends and what the answer must name.

Derived from the schema declaration (riskscreen.contract.schema.INTAKE_FIELDS), so a new field or
category is attacked without anyone listing it here. Used in process (one test per case) and
against a real server process (the whole corpus, then the process and its logs are checked).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from reliability_support import category_fields, ranged_fields, score_body, valid_intake

from riskscreen.contract.schema import INTAKE_FIELDS
from riskscreen.settings import Settings
from service.schemas import MAX_BATCH

MAX_BODY: int = Settings.model_fields["max_body_bytes"].default  # the apps under test keep it
SCORE_REF = "{score_id}"  # replaced by the id of a score that exists
IDENTITY_NUMBERS = ("19900101-1234", "199001011234", "900101-1234", "9001011234", "900101 1234")
# Issue 16, Why 2: accepted as case_ref and stored in the log (the first three), or in a comment
# (all of them); the guard now reads dashes, spaces, underscores and invisible characters
# between digits as separators.
SEPARATED_NUMBERS = ("19850101_1234", "850101--1234", "85-01-01-1234")
COMMENT_NUMBERS = (
    "8501 01-1234",
    "850101-12 34",
    "850101\u20131234",  # en dash
    "850101\u20111234",  # non-breaking hyphen
    "850101\u200b-1234",  # a zero-width space before the dash
)
INVISIBLE = (("bidi override", "\u202e"), ("zero-width space", "\u200b"), ("C1 control", "\x85"))


@dataclass
class Hostile:
    id: str
    body: bytes
    status: int
    names: tuple[str, ...] = ()  # texts the answer must contain (field paths, rules)
    path: str = "/v1/scores"
    content_type: str | None = "application/json"
    intake: dict[str, Any] = field(default_factory=valid_intake)  # what was submitted
    secrets: tuple[str, ...] = ()  # must appear neither in the answer nor in the logs
    chunked: bool = False
    writes: int = 1  # audit records written when it is accepted (201)


def _raw(body: dict[str, Any], replacements: dict[str, str]) -> bytes:
    """JSON text of `body` with placeholder strings swapped for raw tokens (NaN, 1e309...)."""
    text = json.dumps(body, ensure_ascii=False)
    for placeholder, raw in replacements.items():
        text = text.replace(json.dumps(placeholder), raw)
    return text.encode("utf-8", "surrogatepass")


def _score(intake: dict[str, Any], case_ref: Any = "case-hostile") -> bytes:
    return _raw({"case_ref": case_ref, "intake": intake}, {})


DECISION = {"support": "usual", "agrees_with_flag": True, "reason_code": "other"}


def _decision(**extra: Any) -> bytes:
    return _raw({**DECISION, **extra}, {})


def non_finite() -> Iterator[Hostile]:
    tokens = ("NaN", "Infinity", "-Infinity", "1e309", "-1e309", '"NaN"', '"Infinity"')
    for f in INTAKE_FIELDS:
        if f.kind not in ("integer", "number"):
            continue
        for token in tokens:
            intake = valid_intake(**{f.name: "@RAW@"})
            body = _raw({"case_ref": "case-nan", "intake": intake}, {"@RAW@": token})
            yield Hostile(f"{f.name}={token}", body, 422, (f"intake.{f.name}",))


WRONG_TYPES: dict[str, tuple[Any, ...]] = {
    "integer": ("3", True, [3], {"v": 3}, 3.5),
    "number": ("7.5", True, [7.5], {"v": 1}),
    "boolean": (1, 0, "true", "false", [True]),
    "category": (1, True, ["none"], {"v": "none"}),
    "date": (20240101, "2024/01/02", "2024-01-02T00:00:00", "0", True),
}


def wrong_types() -> Iterator[Hostile]:
    for f in INTAKE_FIELDS:
        if f.name == "case_ref":
            for value in (123, None, ["x"], {"v": "x"}, True):
                yield Hostile(
                    f"case_ref={value!r}", _score(valid_intake(), value), 422, ("case_ref",)
                )
            continue
        for value in WRONG_TYPES[f.kind]:
            intake = valid_intake(**{f.name: value})
            yield Hostile(
                f"{f.name}={value!r}", _score(intake), 422, (f"intake.{f.name}",), intake=intake
            )
        if not f.nullable:
            intake = valid_intake(**{f.name: None})
            yield Hostile(
                f"{f.name}=null", _score(intake), 422, (f"intake.{f.name}",), intake=intake
            )
    yield Hostile("intake is a list", _raw({"case_ref": "c", "intake": [1]}, {}), 422, ("intake",))
    yield Hostile("body is a list", b"[1, 2]", 422, ("body",))
    yield Hostile("body is a string", b'"x"', 422, ("body",))


def unknown_fields() -> Iterator[Hostile]:
    yield Hostile(
        "unknown top-level field",
        _raw({**score_body(), "name": "Anna Andersson"}, {}),
        422,
        ("name", "extra_forbidden"),
        secrets=("Anna Andersson",),
    )
    intake = {**valid_intake(), "diagnosis": "F43.1 PTSD"}
    yield Hostile(
        "unknown intake field",
        _score(intake),
        422,
        ("intake.diagnosis", "extra_forbidden"),
        secrets=("F43.1",),
    )
    yield Hostile(
        "unknown decision field",
        _decision(note="x"),
        422,
        ("note", "extra_forbidden"),
        path=f"/v1/scores/{SCORE_REF}/decision",
    )


def _misspell(value: str) -> Iterator[str]:
    yield value[:-1]  # truncated
    yield value + "s"
    yield value.upper() if value.upper() != value else value + "x"
    yield value.replace("_", "-") if "_" in value else value[0] + value


def misspelt_categories() -> Iterator[Hostile]:
    for name, categories in category_fields():
        for wrong in sorted({w for c in categories for w in _misspell(c)} - set(categories)):
            intake = valid_intake(**{name: wrong})
            yield Hostile(
                f"{name}={wrong!r}", _score(intake), 422, (f"intake.{name}",), intake=intake
            )


def boundaries() -> Iterator[Hostile]:
    for name, low, high, kind in ranged_fields():
        cast = int if kind == "integer" else float
        for value, ok in ((low - 1, False), (low, True), (high, True), (high + 1, False)):
            intake = valid_intake(**{name: cast(value)})
            status, names = (201, ()) if ok else (422, (f"intake.{name}",))
            yield Hostile(
                f"{name}={cast(value)!r}",
                _score(intake, f"case-{name}"),
                status,
                names,
                intake=intake,
            )


def deep_nesting(levels: int = 10_000) -> Iterator[Hostile]:
    arrays = "[" * levels + "]" * levels
    objects = '{"a":' * levels + "1" + "}" * levels
    yield Hostile("10,000 nested arrays as the body", arrays.encode(), 422, ("nested too deeply",))
    body = _raw({"case_ref": "c", "intake": "@RAW@"}, {"@RAW@": objects})
    yield Hostile("10,000 nested objects in intake", body, 422, ("nested too deeply",))
    shallow = _raw({"case_ref": "c", "intake": "@RAW@"}, {"@RAW@": "[" * 500 + "]" * 500})
    yield Hostile("500 nested arrays in intake", shallow, 422, ("intake",))


def sizes() -> Iterator[Hostile]:
    body = _score(valid_intake())
    at_limit = body + b" " * (MAX_BODY - len(body))
    yield Hostile("body exactly at the limit", at_limit, 201)
    yield Hostile("body one byte over the limit", at_limit + b" ", 413, ("larger",))
    yield Hostile("chunked body over the limit", at_limit + b" ", 413, ("larger",), chunked=True)
    longest = {f.name: max(f.categories, key=len) for f in INTAKE_FIELDS if f.categories}
    full = [score_body("x" * 60 + f"{i:04d}", **longest) for i in range(MAX_BATCH)]
    yield Hostile(
        f"full batch of {MAX_BATCH}, longest values, indented",
        json.dumps({"records": full}, indent=4).encode(),
        201,
        path="/v1/scores/batch",
        writes=MAX_BATCH,
    )
    records = [score_body(f"case-{i}") for i in range(MAX_BATCH + 1)]
    yield Hostile(
        f"batch of {MAX_BATCH + 1}",
        _raw({"records": records}, {}),
        422,
        ("records", "too_long"),
        path="/v1/scores/batch",
    )
    yield Hostile(
        "empty batch", b'{"records": []}', 422, ("records", "too_short"), path="/v1/scores/batch"
    )


def _shown(text: str) -> str:
    """A case id a terminal shows: invisible characters as escapes."""
    return text if text.isascii() and text.isprintable() else ascii(text)


def bad_characters() -> Iterator[Hostile]:
    invisible = tuple((label, f"ab{char}cd") for label, char in INVISIBLE)
    for label, text in (("NUL", "ab\u0000cd"), ("lone surrogate", "ab\ud800cd"), *invisible):
        yield Hostile(f"{label} in case_ref", _score(valid_intake(), text), 422, ("case_ref",))
        intake = valid_intake(disability="none" + text)
        yield Hostile(
            f"{label} in a category", _score(intake), 422, ("intake.disability",), intake=intake
        )
        body = _raw({"case_ref": "c", "intake": {**valid_intake(), text: 1}}, {})
        yield Hostile(f"{label} in a field name", body, 422, ("intake",))
        yield Hostile(
            f"{label} in a comment",
            _decision(comment=f"see {text} notes"),
            422,
            ("comment",),
            path=f"/v1/scores/{SCORE_REF}/decision",
        )
    yield Hostile("invalid UTF-8", b'{"case_ref": "\xff\xfe"}', 422, ("json_invalid",))


def identity_numbers() -> Iterator[Hostile]:
    refs = {n.replace(" ", "") for n in IDENTITY_NUMBERS} | set(SEPARATED_NUMBERS)
    for ref in sorted(refs):
        yield Hostile(
            f"case_ref {ref}",
            _score(valid_intake(), ref),
            422,
            ("case_ref", "personal identity number"),
            secrets=(ref,),
        )
    for number in (*IDENTITY_NUMBERS, *SEPARATED_NUMBERS, *COMMENT_NUMBERS):
        yield Hostile(
            f"comment {_shown(number)}",
            _decision(comment=f"född {number}, ring tillbaka"),
            422,
            ("comment", "personal identity number"),
            path=f"/v1/scores/{SCORE_REF}/decision",
            secrets=(number,),
        )


def empty_and_wrong_type() -> Iterator[Hostile]:
    yield Hostile("empty body", b"", 422, ("missing",))
    yield Hostile("empty decision", b"", 422, ("missing",), path=f"/v1/scores/{SCORE_REF}/decision")
    yield Hostile("empty object", b"{}", 422, ("case_ref", "intake"))
    body = _score(valid_intake())
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        None,
    ):
        yield Hostile(
            f"content type {content_type}",
            body,
            415,
            ("application/json",),
            content_type=content_type,
        )


def corpus() -> list[Hostile]:
    cases = [
        *non_finite(),
        *wrong_types(),
        *unknown_fields(),
        *misspelt_categories(),
        *boundaries(),
        *deep_nesting(),
        *sizes(),
        *bad_characters(),
        *identity_numbers(),
        *empty_and_wrong_type(),
    ]
    assert len({c.id for c in cases}) == len(cases), "case ids must be unique"
    return cases
