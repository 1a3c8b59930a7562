"""Case references made from personal identity numbers by a keyed hash, never reversible.

Exports are often keyed by the personal identity number, which the contract refuses. A mapping
may turn that column into `case_ref`: HMAC-SHA-256 with a secret key that lives outside the
project, written as 26 letters A-Z, so a reference can never look like an identity number (it
has no digit) and cannot be recomputed by anyone without the key. Intake and outcome exports
then join on it, and a case manager's system that holds the same key produces the same
reference at scoring time with `pseudonymous_case_ref`.

The rule, for a system that must reproduce it in another language:

1. Normalise the number to 12 digits, century included: remove blanks; the forms are
   `YYYYMMDDNNNN`, `YYYYMMDD-NNNN`, `YYMMDD-NNNN`, `YYMMDDNNNN` and `YYMMDD+NNNN`. For the 10-digit
   forms the century is the one that puts the birth year at most 99 years before the current
   year, or 100 years earlier still with "+" (the Swedish Tax Agency's rule).
2. key = the secret file's bytes without surrounding whitespace (a trailing newline).
3. n = HMAC-SHA-256(key, the 12 digits as ASCII) read as a big-endian unsigned integer.
4. The reference is n mod 26^26 written in base 26 with the digits A-Z, most significant
   first, padded with A to 26 letters.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from pathlib import Path

LETTERS = 26
MIN_SECRET_BYTES = 32
_FORM = re.compile(r"^(?P<date>\d{6}|\d{8})(?P<sep>[-+]?)(?P<serial>\d{4})$")


class SecretFileError(ValueError):
    """The key for pseudonymous case references cannot be used (message names the rule)."""


def normalise_identity_number(identity_number: str, today: dt.date | None = None) -> str:
    """The number as 12 digits with the century (see the module's rule).

    Raises:
        ValueError: not one of the accepted forms. The message never repeats the input.
    """
    match = _FORM.match(re.sub(r"\s", "", identity_number))
    if match is None:
        raise ValueError("is not a personal identity number (10 or 12 digits)")
    date, serial = match["date"], match["serial"]
    if len(date) == 8:
        return date + serial
    year = (today or dt.date.today()).year
    born = year - (year - int(date[:2])) % 100  # the latest year ending in these two digits
    if match["sep"] == "+":
        born -= 100
    return f"{born:04d}{date[2:]}{serial}"


def pseudonymous_case_ref(identity_number: str, secret: bytes) -> str:
    """The case reference riskscreen uses for a person, from their identity number and the key.

    Args:
        identity_number: a personal or coordination number in any accepted form.
        secret: the key (`read_secret`); the same key gives the same reference everywhere.

    Raises:
        ValueError: the identity number is not in an accepted form.
    """
    digest = hmac.new(secret, normalise_identity_number(identity_number).encode(), hashlib.sha256)
    number = int.from_bytes(digest.digest(), "big") % LETTERS**LETTERS
    letters = []
    for _ in range(LETTERS):
        number, digit = divmod(number, LETTERS)
        letters.append(chr(ord("A") + digit))
    return "".join(reversed(letters))


def _in_git_work_tree(path: Path) -> Path | None:
    return next((p for p in path.parents if (p / ".git").exists()), None)


def read_secret(path: Path) -> bytes:
    """The key from its file: at least 32 bytes, kept outside any git working tree.

    A key inside a repository is one commit away from being published, and whoever has it can
    test guessed identity numbers against the references.

    Raises:
        SecretFileError: the file is missing, too short or inside a git working tree.
    """
    path = path.expanduser().resolve()
    tree = _in_git_work_tree(path)
    if tree is not None:
        raise SecretFileError(
            f"the secret file lies inside the git working tree {tree}; keep it outside any "
            "repository"
        )
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise SecretFileError(f"the secret file cannot be read ({exc.strerror})") from exc
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretFileError(
            f"the secret file holds {len(secret)} bytes; it needs at least {MIN_SECRET_BYTES} "
            "(e.g. `openssl rand -hex 32 > FILE`)"
        )
    return secret
