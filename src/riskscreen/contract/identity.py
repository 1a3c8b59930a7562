"""The one guard against personal identity numbers, for every string that reaches storage.

A Swedish personal or coordination number identifies a person outright; the data contract
accepts only opaque pseudonyms as `case_ref`, and no text about a person. Whatever is written to
the audit log or read from a table asks this module: a score's `case_ref` (API and tables), a
decision's comment, the reason of `riskscreen model approve`, a key's name; the table readers
and the mapping tools use it to keep identity numbers out of their messages. The rule:

1. Invisible characters are refused outright: control characters (Cc, C0 and C1), format
   characters (Cf: zero-width spaces and joiners, direction overrides, the soft hyphen) and the
   other default-ignorable code points (variation selectors, fillers). A comment may keep tabs
   and line breaks.
2. The text is read as written and in its NFKC form (fullwidth digits become 0-9). Between
   digits every dash (Unicode Pd, U+2212 minus), space (Zs, Zl, Zp), underscore, dot, plus and
   invisible character is a separator, however many follow each other.
3. Ten or twelve digits held apart by nothing but separators, from the first digit of a run of
   digits to the last digit of one, are refused: `850101-1234`, `19850101_1234`,
   `85-01-01-1234`, `8501 01-12 34`. Coordination numbers (day + 60) are digits like any other;
   the check digit is not looked at.

A run may start and end at any digit group, so `19850101-1234-5` and `2024-19850101-1234`,
which the rule before this one refused, stay refused: removing every separator would merge them
into 13 or 16 digits. A reference made of a date and a four-digit serial (`240101-0012`)
cannot be told from an identity number and is refused, as is a year with a six-digit serial
(`2024-001234`, ten digits); the README lists the reference styles that pass. Rejecting an odd
reference costs a retype; storing an identity number is a GDPR breach.
"""

from __future__ import annotations

import re
import unicodedata

Ranges = tuple[tuple[int, int], ...]

# Unicode 14.0, as Python 3.11 has it; tests/unit/contract/test_identity.py holds each list to
# the running Python's unicodedata (and the default-ignorables to fontTools' table).
DASHES: Ranges = (  # Pd, and the minus sign (Sm) people type for a dash
    (0x002D, 0x002D), (0x058A, 0x058A), (0x05BE, 0x05BE), (0x1400, 0x1400), (0x1806, 0x1806),
    (0x2010, 0x2015), (0x2212, 0x2212), (0x2E17, 0x2E17), (0x2E1A, 0x2E1A), (0x2E3A, 0x2E3B),
    (0x2E40, 0x2E40), (0x2E5D, 0x2E5D), (0x301C, 0x301C), (0x3030, 0x3030), (0x30A0, 0x30A0),
    (0xFE31, 0xFE32), (0xFE58, 0xFE58), (0xFE63, 0xFE63), (0xFF0D, 0xFF0D), (0x10EAD, 0x10EAD),
)  # fmt: skip
SPACES: Ranges = (  # Zs, Zl, Zp
    (0x0020, 0x0020), (0x00A0, 0x00A0), (0x1680, 0x1680), (0x2000, 0x200A), (0x2028, 0x2029),
    (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
)  # fmt: skip
CONTROLS: Ranges = ((0x0000, 0x001F), (0x007F, 0x009F))  # Cc: C0, DEL and C1
FORMATS: Ranges = (  # Cf
    (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F),
    (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)  # fmt: skip
IGNORABLES: Ranges = (  # Default_Ignorable_Code_Point beyond Cf: invisible marks and fillers
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180D), (0x180F, 0x180F),
    (0x2065, 0x2065), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0000), (0xE0002, 0xE001F), (0xE0080, 0xE00FF), (0xE0100, 0xE0FFF),
)  # fmt: skip
OTHER_SEPARATORS = "_.+"
LINE_BREAKS = "\t\n\r"

CASE_REF_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

REFERENCE_REFUSAL = (
    "looks like a Swedish personal identity number: 10 or 12 digits once the dashes, "
    "underscores, dots and spaces between them are left out. A reference made of a date and a "
    "serial (YYMMDD-NNNN) cannot be told apart from a personal identity number; use another "
    "reference style (such as LKP-2026-0042)"
)
TEXT_REFUSAL = (
    "holds something that looks like a Swedish personal identity number (10 or 12 digits, "
    "whatever dashes, spaces, underscores or dots separate them); remove it"
)
INVISIBLE_REFUSAL = (
    "holds invisible formatting or control characters (such as a zero-width space, a "
    "direction override or NUL); remove them"
)


def _char(code: int) -> str:
    # \uXXXX reads alike in Python, ECMA-262 (JSON Schema) and Rust; beyond the BMP the
    # character itself, since each writes those escapes differently.
    return f"\\u{code:04X}" if code <= 0xFFFF else chr(code)


def _class(ranges: Ranges, extra: str = "") -> str:
    """The inside of a regex character class: `ranges` and the characters of `extra`."""
    parts = [_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in ranges]
    return "".join(parts) + "".join(_char(ord(c)) for c in extra)


def _shape(digit: str, separator: str) -> str:
    """10 or 12 digits with runs of separators between them, from a run's start to its end."""
    step = f"{digit}{separator}*"
    return f"(?<!{digit})(?:{step}){{9}}(?:(?:{step}){{2}})?{digit}(?!{digit})"


_INVISIBLE: Ranges = CONTROLS + FORMATS + IGNORABLES
_CONTROLS_BUT_LINE_BREAKS: Ranges = ((0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), (0x7F, 0x9F))
_INVISIBLE_BESIDE_LINES: Ranges = _CONTROLS_BUT_LINE_BREAKS + FORMATS + IGNORABLES
_SEPARATOR = f"[{_class(DASHES + SPACES + _INVISIBLE, OTHER_SEPARATORS)}]"
_PERSONAL_NUMBER = re.compile(_shape(r"\d", _SEPARATOR))
_INVISIBLE_CHARACTER = {
    False: re.compile(f"[{_class(_INVISIBLE)}]"),
    True: re.compile(f"[{_class(_INVISIBLE_BESIDE_LINES)}]"),
}  # by whether line breaks may stay

# The case_ref rule as published in the API's JSON Schema: CASE_REF_PATTERN minus every shape
# looks_like_personal_number finds. Within that alphabet the separators are "-" and "_" and NFKC
# changes nothing, so the two are equal; test_identity.py holds them equal. Validation runs the
# two checks apart, for a message that names the rule.
CASE_REF_PUBLISHED_PATTERN = rf"^(?![A-Za-z0-9_-]*?{_shape('[0-9]', '[-_]')})[A-Za-z0-9_-]{{1,64}}$"


def looks_like_personal_number(text: str) -> bool:
    """True if `text` holds 10 or 12 digits held apart only by separators (the module's rule),
    as written or in its NFKC form."""
    if _PERSONAL_NUMBER.search(text):
        return True
    return not text.isascii() and bool(_PERSONAL_NUMBER.search(unicodedata.normalize("NFKC", text)))


def is_personal_number(text: str) -> bool:
    """True if `text` is one identity number by the module's rule and nothing else (blanks
    around it aside): how a column of them is recognised, where a date with its time of day
    (`2024-01-15 00:00:00`, which holds ten digits) must not be."""
    if _PERSONAL_NUMBER.fullmatch(text.strip()):
        return True
    return not text.isascii() and bool(
        _PERSONAL_NUMBER.fullmatch(unicodedata.normalize("NFKC", text).strip())
    )


def refusal(text: str, *, reference: bool = False, line_breaks: bool = False) -> str | None:
    """Why `text` may not be stored, or None if it may.

    Args:
        text: a case reference, a comment, a reason, a name: anything that is stored.
        reference: `text` is a case reference: the message then says which reference styles
            cannot be told from an identity number.
        line_breaks: tabs and line breaks may stay (a comment of several lines).
    """
    if looks_like_personal_number(text):
        return REFERENCE_REFUSAL if reference else TEXT_REFUSAL
    if _INVISIBLE_CHARACTER[line_breaks].search(text):
        return INVISIBLE_REFUSAL
    return None


def checked(text: str, *, reference: bool = False, line_breaks: bool = False) -> str:
    """`text` unchanged if it may be stored (see `refusal`).

    Raises:
        ValueError: with the reason as its message, which never repeats the text.
    """
    why = refusal(text, reference=reference, line_breaks=line_breaks)
    if why is not None:
        raise ValueError(why)
    return text


def published_text_pattern(*, line_breaks: bool) -> str:
    """The rule for free text as a JSON Schema pattern (ECMA-262 with Unicode property escapes).

    It is the server's rule without the NFKC reading: text that only NFKC turns into an
    identity number (superscript or circled digits) passes the pattern and is refused by the
    server, as is anything over the field's other limits.
    """
    invisible = _INVISIBLE_BESIDE_LINES if line_breaks else _INVISIBLE
    separator = _class(DASHES + SPACES, OTHER_SEPARATORS + (LINE_BREAKS if line_breaks else ""))
    identity = _shape(r"\p{Nd}", f"[{separator}]")
    return rf"^(?![\s\S]*?{identity})[^{_class(invisible)}]*$"
