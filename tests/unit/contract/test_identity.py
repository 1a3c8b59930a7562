"""The one identity-number guard, for every string that reaches storage (issue 16, item 2).

Nothing the rule before it refused may pass; the shapes that got through (issue 16, Why 2) are
refused; generated personal and coordination numbers in any rendering are refused; ordinary
reference styles pass; and the patterns published in the API's JSON Schema say the same.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from functools import cache
from pathlib import Path

import jsonschema_rs
import pytest
from fontTools.merge.unicode import is_Default_Ignorable
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from riskscreen.contract import identity
from riskscreen.contract.identity import (
    CASE_REF_PATTERN,
    CASE_REF_PUBLISHED_PATTERN,
    INVISIBLE_REFUSAL,
    REFERENCE_REFUSAL,
    TEXT_REFUSAL,
    checked,
    is_personal_number,
    looks_like_personal_number,
    published_text_pattern,
    refusal,
)
from riskscreen.contract.record import CaseRef

# The rule before issue 16: 6 or 8 digits, at most one "-", "+" or space, 4 digits.
BEFORE = re.compile(r"(?<!\d)(?:\d{6}|\d{8})[-+ ]?\d{4}(?!\d)")
REFUSED_BEFORE = [
    "19850101-1234",
    "850101-1234",
    "198501011234",
    "8501011234",
    "850101+1234",
    "19850101+1234",
    "850101 1234",
    "ref_850101 1234",
    "x19850101-1234y",
    "850161-1234",  # a coordination number: day + 60
    "19850101-1234-5",  # removing every separator would make these 13 and 16 digits
    "2024-19850101-1234",
    "240101-0012",  # a date and a serial
    "\u0668\u0665\u0660\u0661\u0660\u0661-\u0661\u0662\u0663\u0664",  # Arabic-Indic digits
]
# Issue 16, Why 2: accepted as case_ref and stored in the append-only log...
WHY_CASE_REFS = ["19850101_1234", "850101--1234", "85-01-01-1234"]
# ...and, in a decision comment, also these.
WHY_COMMENTS = [
    "8501 01-1234",
    "850101-12 34",
    "850101\u20131234",  # en dash
    "850101\u20111234",  # non-breaking hyphen
    "850101\u200b-1234",  # a zero-width space before the dash
]
# What the README promises to accept, and the reference shapes that fail from issue 16 on.
PROMISED = ["LKP-2026-0042", "2026-00042", "A123456", "KF_2026_17", "SOC-240101-17"]
NEWLY_REFUSED = [
    "2024-001234",  # a year and a six-digit serial: ten digits
    "2024_00001234",  # a year and an eight-digit serial: twelve
    "LKP-2026-0042-01",
    "A12-34567890",
    "S7-000000001",  # the synthetic cohort's references for seed 7 before this change
]
INVISIBLE = [
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner
    "\u2060",  # word joiner
    "\ufeff",  # zero-width no-break space
    "\u00ad",  # soft hyphen
    "\u034f",  # combining grapheme joiner (default-ignorable, not Cf)
    "\u3164",  # Hangul filler (default-ignorable, a letter)
    "\U000e0041",  # tag latin capital letter A
    "\x00",
    "\x1b",
    "\x7f",
    "\x85",  # C1: next line
    "\x9b",  # C1: control sequence introducer
]


def server_accepts_case_ref(text: str) -> bool:
    try:
        TypeAdapter(CaseRef).validate_python(text)
    except ValidationError:
        return False
    return True


@cache
def published(pattern: str) -> jsonschema_rs.Validator:
    """How a JSON Schema validator (ECMA-262 semantics) reads a published pattern."""
    return jsonschema_rs.validator_for({"type": "string", "pattern": pattern})


# --- nothing refused before passes ---------------------------------------------------------


@pytest.mark.parametrize("text", REFUSED_BEFORE)
def test_every_shape_refused_before_is_refused(text: str) -> None:
    assert BEFORE.search(text)
    assert looks_like_personal_number(text)
    assert refusal(text) == TEXT_REFUSAL
    assert refusal(text, reference=True) == REFERENCE_REFUSAL


@given(
    before=st.text(max_size=8),
    number=st.from_regex(r"\A(\d{6}|\d{8})[-+ ]?\d{4}\Z"),
    after=st.text(max_size=8),
)
def test_whatever_the_rule_before_found_is_found(before: str, number: str, after: str) -> None:
    text = before + number + after
    if BEFORE.search(text):
        assert looks_like_personal_number(text)
        assert refusal(text) is not None


# --- what got through (issue 16, Why 2) ----------------------------------------------------


@pytest.mark.parametrize("text", WHY_CASE_REFS + WHY_COMMENTS)
def test_the_numbers_that_got_through_are_recognised(text: str) -> None:
    assert looks_like_personal_number(text)
    assert looks_like_personal_number(f"född {text}, ring tillbaka")
    assert refusal(f"född {text}, ring tillbaka", line_breaks=True) == TEXT_REFUSAL


@pytest.mark.parametrize("text", WHY_CASE_REFS)
def test_the_case_refs_that_got_through_are_refused_as_case_refs(text: str) -> None:
    assert not server_accepts_case_ref(text)
    assert not re.fullmatch(CASE_REF_PUBLISHED_PATTERN, text)
    assert not published(CASE_REF_PUBLISHED_PATTERN).is_valid(text)


@pytest.mark.parametrize("char", INVISIBLE)
def test_invisible_and_control_characters_are_refused(char: str) -> None:
    text = f"Granskad{char} av enheten"
    assert refusal(text) == INVISIBLE_REFUSAL
    assert refusal(text, line_breaks=True) == INVISIBLE_REFUSAL
    assert not server_accepts_case_ref(f"LKP{char}2026")


def test_only_a_comment_keeps_tabs_and_line_breaks() -> None:
    text = "rad ett\r\nrad två\tslut"
    assert refusal(text, line_breaks=True) is None
    assert refusal(text) == INVISIBLE_REFUSAL
    assert refusal("8501\n01-1234", line_breaks=True) == TEXT_REFUSAL  # a break separates


# --- a date and a serial, the promised styles, the newly refused ---------------------------


def test_a_date_and_a_serial_stays_refused_and_the_message_says_why() -> None:
    assert refusal("240101-0012", reference=True) == REFERENCE_REFUSAL
    assert "date and a serial" in REFERENCE_REFUSAL
    assert "cannot be told apart from a personal identity number" in REFERENCE_REFUSAL
    assert "use another reference style" in REFERENCE_REFUSAL
    with pytest.raises(ValidationError) as err:
        TypeAdapter(CaseRef).validate_python("240101-0012")
    assert REFERENCE_REFUSAL in str(err.value)


@pytest.mark.parametrize("ref", PROMISED)
def test_the_promised_reference_styles_pass(ref: str) -> None:
    assert refusal(ref, reference=True) is None
    assert server_accepts_case_ref(ref)
    assert re.fullmatch(CASE_REF_PUBLISHED_PATTERN, ref)
    assert published(CASE_REF_PUBLISHED_PATTERN).is_valid(ref)


@pytest.mark.parametrize("ref", NEWLY_REFUSED)
def test_the_newly_refused_shapes_were_accepted_before(ref: str) -> None:
    assert not BEFORE.search(ref)
    assert refusal(ref, reference=True) == REFERENCE_REFUSAL
    assert not published(CASE_REF_PUBLISHED_PATTERN).is_valid(ref)


def test_the_readme_lists_what_is_promised_and_what_newly_fails() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")
    for ref in PROMISED + NEWLY_REFUSED + WHY_CASE_REFS + ["240101-0012"]:
        assert f"`{ref}`" in readme, ref


@pytest.mark.parametrize(
    ("text", "whole"),
    [
        (" 19850101-1234 ", True),
        ("85-01-01-1234", True),
        ("\uff18\uff15\uff10\uff11\uff10\uff11-1234", True),
        ("ID 850101-1234", False),  # holds one: refused, but not a column of identity numbers
        ("2024-01-15 00:00:00", False),  # a date cell of an .xlsx: refused as stored text
    ],
)
def test_a_whole_identity_number_is_told_from_text_that_holds_one(text: str, whole: bool) -> None:
    assert is_personal_number(text) == whole
    assert looks_like_personal_number(text)


def test_checked_gives_the_text_back_or_raises_without_it() -> None:
    assert checked("LKP-2026-0042", reference=True) == "LKP-2026-0042"
    with pytest.raises(ValueError, match="personal identity number") as err:
        checked("8501 01-1234")
    assert "8501" not in str(err.value)


# --- generated identity numbers never pass -------------------------------------------------


def _luhn(digits: str) -> int:
    total = 0
    for i, d in enumerate(int(c) for c in digits):
        doubled = d * 2 if i % 2 == 0 else d
        total += doubled - 9 if doubled > 9 else doubled
    return (10 - total % 10) % 10


@st.composite
def identity_numbers(draw: st.DrawFn) -> str:
    """A personal or coordination number's digits: 12 with the century or 10 without, a check
    digit by Luhn or not (the guard does not look at it)."""
    born = draw(st.dates(dt.date(1890, 1, 1), dt.date(2026, 12, 31)))
    day = born.day + (60 if draw(st.booleans()) else 0)
    body = f"{born:%Y%m}{day:02d}{draw(st.integers(0, 999)):03d}"
    check = _luhn(body[2:]) if draw(st.booleans()) else draw(st.integers(0, 9))
    digits = body + str(check)
    return digits[2:] if draw(st.booleans()) else digits


SEPARATORS = (
    "-_. +"
    "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"  # dashes, minus
    "\u00a0\u2009\u202f\u3000\u1680"  # spaces
    "\uff3f\uff0e\uff0b"  # fullwidth low line, full stop, plus: NFKC folds them
    "\u200b\u200c\u200d\u2060\ufeff\u00ad\u202e\u2066\u034f\ufe0f\t\n\x85"  # invisible
)
SUPERSCRIPTS = "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
WIDTHS = (
    lambda d: str(d),
    lambda d: chr(0xFF10 + d),  # fullwidth
    lambda d: chr(0x1D7CE + d),  # mathematical bold
    lambda d: chr(0x0660 + d),  # Arabic-Indic
    lambda d: SUPERSCRIPTS[d],
)


@st.composite
def rendered_identity_numbers(draw: st.DrawFn) -> str:
    digits = draw(identity_numbers())
    parts = []
    for i, c in enumerate(digits):
        if i:
            parts.append(draw(st.text(st.sampled_from(SEPARATORS), max_size=3)))
        parts.append(draw(st.sampled_from(WIDTHS))(int(c)))
    before = draw(st.sampled_from(["", "ref ", "född ", "SOC-", "nr: ", "(", "x", "2024-"]))
    after = draw(st.sampled_from(["", ", ring", ")", " tack", "-A", "-5"]))
    return before + "".join(parts) + after


@settings(max_examples=300)
@given(rendered_identity_numbers())
@example("19850101_1234")
@example("\uff18\uff15\uff10\uff11\uff10\uff11\uff0d\uff11\uff12\uff13\uff14")  # fullwidth
def test_no_rendering_of_an_identity_number_passes(text: str) -> None:
    assert looks_like_personal_number(text)
    assert refusal(text) is not None
    assert refusal(text, line_breaks=True) is not None
    assert refusal(text, reference=True) is not None


# --- ordinary references always pass -------------------------------------------------------


def _digits(draw: st.DrawFn, low: int, high: int) -> str:
    width = draw(st.integers(low, high))
    return f"{draw(st.integers(0, 10**width - 1)):0{width}d}"


@st.composite
def ordinary_refs(draw: st.DrawFn) -> str:
    """Municipal reference styles: letters, a year or date, a short serial; no stretch of digits
    and separators holds more than nine digits."""
    letters = draw(st.text(st.sampled_from("ABCDEFGHKLMNPRSTVXYZabcdefgh"), min_size=1, max_size=4))
    sep = draw(st.sampled_from(["-", "_", ""]))
    sep2 = draw(st.sampled_from(["-", "_", "--"]))
    year = str(draw(st.integers(1990, 2035)))
    styles = [
        f"{letters}{sep}{year}{sep2}{_digits(draw, 1, 5)}",  # LKP-2026-0042, KF_2026_17
        f"{year}{sep2}{_digits(draw, 1, 5)}",  # 2026-00042
        f"{letters}{_digits(draw, 1, 9)}",  # A123456
        f"{letters}{sep2}{draw(st.dates()):%y%m%d}{sep2}{_digits(draw, 1, 3)}",  # SOC-240101-17
        f"{letters}{sep}{year}{letters}{_digits(draw, 1, 9)}",  # KF2026A000123
        f"{letters}{sep2}{_digits(draw, 1, 9)}{sep2}{letters}",
    ]
    return draw(st.sampled_from(styles))


@settings(max_examples=300)
@given(ordinary_refs())
def test_no_ordinary_reference_is_refused(ref: str) -> None:
    assert refusal(ref, reference=True) is None
    assert server_accepts_case_ref(ref)
    assert published(CASE_REF_PUBLISHED_PATTERN).is_valid(ref)


# --- the published patterns say what the server does --------------------------------------


@settings(max_examples=1000)
@given(st.text(st.sampled_from("0123456789-_aZ"), max_size=70))
@example("S7-000000001")
@example("1-2345678901")
@example("12345678901")
@example("19850101-1234-5")
@example("a" * 65)
def test_the_published_case_ref_pattern_is_the_servers_rule(text: str) -> None:
    server = server_accepts_case_ref(text)
    assert bool(re.fullmatch(CASE_REF_PUBLISHED_PATTERN, text)) == server
    assert published(CASE_REF_PUBLISHED_PATTERN).is_valid(text) == server
    rule = bool(re.fullmatch(CASE_REF_PATTERN, text)) and refusal(text, reference=True) is None
    assert server == rule


COMMENT_PATTERN = published_text_pattern(line_breaks=True)
# No character NFKC changes: the published pattern is the rule without the NFKC reading.
TEXT_ALPHABET = (
    "0123456789\u0661\u0662 -_.+,:/aåZ\u2013\u2011\u2212\u00a0\u3000\t\n\u200b\u202e\x85\x00"
)


@settings(max_examples=1000)
@given(st.text(st.sampled_from(TEXT_ALPHABET), max_size=40))
@example("Erbjöds intensifierat stöd; ring 2026-01-15.")
def test_the_published_comment_pattern_is_the_servers_rule(text: str) -> None:
    server = refusal(text, line_breaks=True) is None
    assert published(COMMENT_PATTERN).is_valid(text) == server


@pytest.mark.parametrize("text", REFUSED_BEFORE + WHY_CASE_REFS + WHY_COMMENTS + INVISIBLE)
def test_the_published_comment_pattern_refuses_what_the_server_refuses(text: str) -> None:
    assert not published(COMMENT_PATTERN).is_valid(f"se {text} här")


def test_the_published_text_pattern_without_line_breaks_refuses_them() -> None:
    assert not published(published_text_pattern(line_breaks=False)).is_valid("a\nb")
    assert published(published_text_pattern(line_breaks=False)).is_valid("Audit unit 2")


# --- the character tables are this Python's Unicode ----------------------------------------


def _code_points(ranges: identity.Ranges) -> set[int]:
    return {c for lo, hi in ranges for c in range(lo, hi + 1)}


@cache
def _by_category() -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for c in range(0x110000):
        found.setdefault(unicodedata.category(chr(c)), set()).add(c)
    return found


def test_the_character_tables_are_this_pythons_unicode() -> None:
    cats = _by_category()
    assert _code_points(identity.DASHES) == cats["Pd"] | {0x2212}
    assert _code_points(identity.SPACES) == cats["Zs"] | cats["Zl"] | cats["Zp"]
    assert _code_points(identity.CONTROLS) == cats["Cc"]
    assert _code_points(identity.FORMATS) == cats["Cf"]
    ignorable = {c for c in range(0x110000) if is_Default_Ignorable(c)}
    assert _code_points(identity.IGNORABLES) == ignorable - cats["Cf"]
