"""Made-up Swedish personal identity numbers for a synthetic cohort, as an export would key it.

A municipality's case system keys its intake and outcome exports by the personal identity number,
so the worked example must too: that is what the mapping's `identity_number_column` turns into an
opaque `case_ref`. The numbers are shaped like real ones (`YYYYMMDD-NNNN`: birth date, a
three-digit birth number whose last digit is odd for men and even for women, and the Luhn check
digit) so that every check the real ones meet is met, and they are derived from nothing but the
person's age, intake date and position in the cohort, so the same cohort gives the same numbers.

They are invented, and an invented valid number may belong to a real person; a test environment
that needs numbers guaranteed to be nobody's uses the Swedish Tax Agency's test numbers
(testpersonnummer) instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

_BIRTH_NUMBERS = 1000
_DAYS_BEFORE_BIRTHDAY = 360  # at most, so the age at intake stays the recorded age


def luhn_check_digit(digits: str) -> int:
    """The check digit of the 9 digits `YYMMDDNNN` (the Luhn algorithm, weights 2, 1, 2, ...)."""
    total = 0
    for i, char in enumerate(digits):
        product = int(char) * (2 if i % 2 == 0 else 1)
        total += product // 10 + product % 10
    return (10 - total % 10) % 10


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def birth_date(intake_date: dt.date, age: int, counter: int) -> dt.date:
    """A birth date that makes the person exactly `age` whole years old on `intake_date`.

    Between 1 and 360 days before the age-th birthday that precedes the intake, chosen by the
    counter, so people of one age and intake day are born on different days.
    """
    birthday = _years_before(intake_date, age)
    return birthday - dt.timedelta(days=1 + (counter * 97) % _DAYS_BEFORE_BIRTHDAY)


def identity_numbers(
    intake_dates: Iterable[dt.date], ages: Iterable[int], sexes: Iterable[str | None]
) -> list[str]:
    """One distinct `YYYYMMDD-NNNN` per person, in order.

    The birth number starts at a value taken from the person's position (the counter), with the
    parity the sex gives (odd for men, even for women, either otherwise), and steps on past any
    number already given to someone born the same day.

    Raises:
        RuntimeError: two people got the same number (a birth day ran out of birth numbers).
    """
    taken: set[str] = set()
    numbers = []
    for counter, (intake_date, age, sex) in enumerate(zip(intake_dates, ages, sexes, strict=True)):
        born = birth_date(intake_date, int(age), counter)
        serial = (counter * 7919) % _BIRTH_NUMBERS
        if (sex == "male" and serial % 2 == 0) or (sex == "female" and serial % 2 == 1):
            serial = (serial + 1) % _BIRTH_NUMBERS
        for _ in range(_BIRTH_NUMBERS // 2):
            nine = f"{born:%y%m%d}{serial:03d}"
            number = f"{born:%Y%m%d}-{serial:03d}{luhn_check_digit(nine)}"
            if number not in taken:
                break
            serial = (serial + 2) % _BIRTH_NUMBERS
        taken.add(number)
        numbers.append(number)
    if len(taken) != len(numbers):
        raise RuntimeError("two people were given the same identity number")
    return numbers
