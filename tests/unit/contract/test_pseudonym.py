"""Case references from identity numbers: letters only, never shaped like an identity number, the
same for every written form of one number, and reproducible from the documented rule."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskscreen.contract.identity import CASE_REF_PATTERN, looks_like_personal_number
from riskscreen.contract.pseudonym import normalise_identity_number, pseudonymous_case_ref

TODAY = dt.date.today()
born = st.dates(min_value=dt.date(TODAY.year - 99, 1, 1), max_value=dt.date(TODAY.year - 1, 12, 31))
serials = st.integers(min_value=0, max_value=9999).map(lambda n: f"{n:04d}")
secrets = st.binary(min_size=32, max_size=64)


@settings(max_examples=300, deadline=None)
@given(born=born, serial=serials, secret=secrets)
def test_a_reference_is_letters_and_never_an_identity_number(
    born: dt.date, serial: str, secret: bytes
) -> None:
    full = born.strftime("%Y%m%d") + serial
    ref = pseudonymous_case_ref(full, secret)
    assert re.fullmatch(r"[A-Z]{26}", ref)
    assert re.fullmatch(CASE_REF_PATTERN, ref)
    assert not looks_like_personal_number(ref)
    short = born.strftime("%y%m%d")
    for form in (f"{born:%Y%m%d}-{serial}", f"{short}-{serial}", f"{short}{serial}", f" {full} "):
        assert pseudonymous_case_ref(form, secret) == ref, form


def _documented_rule(twelve_digits: str, key: bytes) -> str:
    """The README's rule, written out independently of the implementation."""
    n = int.from_bytes(hmac.new(key, twelve_digits.encode("ascii"), hashlib.sha256).digest(), "big")
    n %= 26**26
    letters = ""
    for _ in range(26):
        n, r = divmod(n, 26)
        letters = chr(65 + r) + letters
    return letters


def test_the_rule_is_the_documented_one_and_keyed() -> None:
    key = b"k" * 32
    assert pseudonymous_case_ref("19800101-1234", key) == _documented_rule("198001011234", key)
    assert pseudonymous_case_ref("19800101-1234", b"j" * 32) != pseudonymous_case_ref(
        "19800101-1234", key
    )
    assert pseudonymous_case_ref("19800101-1235", key) != pseudonymous_case_ref(
        "19800101-1234", key
    )


def test_the_century_of_a_ten_digit_number() -> None:
    today = dt.date(2026, 6, 1)
    assert normalise_identity_number("800101-1234", today) == "198001011234"
    assert normalise_identity_number("260101-1234", today) == "202601011234"
    assert normalise_identity_number("270101-1234", today) == "192701011234"
    assert normalise_identity_number("200101+1234", today) == "192001011234"  # 100 or older
    assert normalise_identity_number("19200101-1234", today) == "192001011234"


@pytest.mark.parametrize("text", ["1980-01-01", "19800101-123", "abc", "", "8001011234567"])
def test_other_text_is_refused_without_being_repeated(text: str) -> None:
    with pytest.raises(ValueError) as err:
        normalise_identity_number(text)
    assert str(err.value) == "is not a personal identity number (10 or 12 digits)"
