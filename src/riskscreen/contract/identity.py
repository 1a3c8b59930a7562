"""The guard against personal identity numbers, for every reference that may be stored.

A Swedish personal or coordination number identifies a person outright; the data contract
accepts only opaque pseudonyms as `case_ref`. The table reader, the API's record and the
generator all ask this one module, so the rule cannot differ between them.
"""

from __future__ import annotations

import re

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


def looks_like_personal_number(text: str) -> bool:
    """True if `text` contains something shaped like a Swedish personal identity number."""
    return bool(_PERSONAL_NUMBER.search(text))
