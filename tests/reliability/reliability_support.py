"""Helpers shared by the reliability tests: keys, valid bodies, audit-log facts, leak checks.

Imported by module name (tests/reliability is on sys.path under pytest's default import mode).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from riskscreen.audit.chain import AuditStore
from riskscreen.audit.keys import ROLES, KeyStore
from riskscreen.contract.schema import FIELDS_BY_NAME, INTAKE_FIELDS
from riskscreen.settings import Settings
from service.app import create_app

# Special-category fields: their submitted values must never come back in an error or a log.
SPECIAL = tuple(f.name for f in INTAKE_FIELDS if f.special_category)


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'audit.db'}"


@dataclass
class Keys:
    """Bearer tokens and key ids by name; the roles' own names are always there."""

    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def auth(self, name: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"} if name else {}


def add_keys(url: str, **extra: str) -> Keys:
    """One key per role (named after it) plus `extra` (name=role), in the database at `url`."""
    store = KeyStore.from_url(url)
    try:
        store.create_schema()
        keys = Keys()
        wanted: dict[str, str] = {role: role for role in ROLES} | extra
        for name, role in wanted.items():
            key, token = store.create(role, name)  # type: ignore[arg-type]
            keys.tokens[name], keys.ids[name] = token, key.key_id
        return keys
    finally:
        store.close()


def valid_intake(**overrides: Any) -> dict[str, Any]:
    """A complete, valid intake mapping with distinctive special-category values."""
    intake: dict[str, Any] = {
        "intake_date": "2024-03-05",
        "age": 34,
        "sex": "female",
        "region_of_origin": "east_africa",
        "permit_type": "quota_refugee",
        "years_of_schooling": 9,
        "education_level": "lower_secondary",
        "literacy": "literate",
        "work_experience_years": 6.5,
        "occupation_group": "5",
        "swedish_level": "sfi_b",
        "english_level": "basic",
        "self_rated_health": 2,
        "depression_symptoms": True,
        "anxiety_symptoms": True,
        "ptsd_symptoms": False,
        "chronic_condition": True,
        "disability": "psychiatric",
        "children_under_6": 2,
        "children_6_to_17": 1,
        "single_parent": True,
        "driving_licence": False,
        "municipality_type": "commuter",
        "local_unemployment_rate": 7.25,
    }
    assert set(intake) == {f.name for f in INTAKE_FIELDS} - {"case_ref"}
    intake.update(overrides)
    return intake


def score_body(case_ref: str = "case-0001", **overrides: Any) -> dict[str, Any]:
    return {"case_ref": case_ref, "intake": valid_intake(**overrides)}


def ranged_fields() -> list[tuple[str, float, float, str]]:
    """(name, minimum, maximum, kind) of every intake field with a declared range."""
    return [
        (f.name, f.minimum, f.maximum, f.kind)
        for f in INTAKE_FIELDS
        if f.minimum is not None and f.maximum is not None
    ]


def category_fields() -> list[tuple[str, tuple[str, ...]]]:
    return [(f.name, f.categories) for f in INTAKE_FIELDS if f.kind == "category"]


def audit_count(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM audit_records").scalar_one())
    finally:
        engine.dispose()


def audit_record_ids(url: str, kind: str | None = None) -> list[str]:
    """Every record id in the log (of one kind), in seq order."""
    engine = sa.create_engine(url)
    query = "SELECT record_id FROM audit_records" + (" WHERE kind = :kind" if kind else "")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(query + " ORDER BY seq"), {"kind": kind} if kind else {})
            return [r[0] for r in rows]
    finally:
        engine.dispose()


def wait_until_logging(url: str, prefixes: list[str], after: int, timeout: float = 60.0) -> None:
    """Wait until every case_ref prefix has a record past `after` rows: all those requests are
    being processed, so a signal sent now finds them in flight."""
    engine = sa.create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text("SELECT payload FROM audit_records WHERE seq > :after"),
                    {"after": after},
                )
                refs = [json.loads(r[0]).get("case_ref", "") for r in rows]
            if all(any(ref.startswith(p) for ref in refs) for p in prefixes):
                return
            time.sleep(0.01)
    finally:
        engine.dispose()
    raise TimeoutError(f"not every request of {prefixes} reached the log in {timeout} s")


def verify_chain(url: str) -> tuple[bool, int, str | None]:
    store = AuditStore.from_url(url)
    try:
        result = store.verify()
        return result.ok, result.checked, result.reason
    finally:
        store.close()


@contextmanager
def client(settings: Settings, **app_kwargs: Any) -> Iterator[TestClient]:
    """The app in process, lifespan entered; server errors come back as 500s, not exceptions."""
    with TestClient(create_app(settings, **app_kwargs), raise_server_exceptions=False) as c:
        yield c


def special_values(intake: Mapping[str, Any]) -> dict[str, Any]:
    return {name: intake[name] for name in SPECIAL if name in intake}


def assert_no_special_values(text: str, intake: Mapping[str, Any]) -> None:
    """No submitted health or disability value, in any spelling a serialiser would use.

    A value can only be recognised next to its field name (a bare `true` or `2` is everywhere),
    so this looks for the field name followed by a value, as JSON, repr or key=value would put
    it; category values other fields do not share (the disability categories) are also looked
    for on their own.
    """
    for name, value in special_values(intake).items():
        pair = re.compile(rf"{name}['\"]?\s*[:=]\s*['\"]?{re.escape(str(value))}", re.IGNORECASE)
        json_pair = re.compile(rf"{name}['\"]?\s*[:=]\s*{re.escape(_json(value))}", re.IGNORECASE)
        assert not pair.search(text) and not json_pair.search(text), f"{name} value leaked"
    disability = intake.get("disability")
    allowed = FIELDS_BY_NAME["disability"].categories
    if isinstance(disability, str) and disability in allowed and disability != "none":
        assert disability not in text, "disability value leaked"


def _json(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def today() -> dt.date:
    return dt.date.today()
