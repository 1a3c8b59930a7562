"""What one service process holds: its stores, the verified model, and the stop switch cache.

Built once at start-up (the lifespan in `service.app`) and reached by routes through
`service.deps`; nothing here is global, so tests can build as many apps as they like.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from riskscreen.audit.chain import AuditStore
from riskscreen.audit.db import write_transaction
from riskscreen.audit.keys import KeyStore
from riskscreen.audit.switch import ScoringSwitchStore
from riskscreen.audit.table import audit_records
from riskscreen.model.scoring import Scorer
from riskscreen.registry import LoadedModel, load_verified, run_metrics
from riskscreen.settings import Settings
from service.schemas import RequestModels, version_request_models

SWITCH_CACHE_SECONDS = 1.0
# A key read from the database is trusted from memory this long: a revocation by another
# process reaches this one as fast as the stop switch does (see riskscreen.audit.keys).
KEY_CACHE_SECONDS = 1.0


# Never committed: seq 0 lies before the chain's first record (seq 1).
_PROBE_ROW = {
    "seq": 0,
    "kind": "probe",
    "created_at": "",
    "payload": "{}",
    "prev_hash": "",
    "hash": "",
}


class _Probe(Exception):
    """Raised inside a write transaction to roll back the probe row written in it."""


@dataclass
class ServedModel:
    """The verified model in service, its scorer, and what `GET /v1/model` reports of it."""

    loaded: LoadedModel
    scorer: Scorer
    metrics: dict[str, float]
    requests: RequestModels  # the scoring bodies this version accepts

    @classmethod
    def build(cls, loaded: LoadedModel, metrics: dict[str, float]) -> ServedModel:
        scorer = Scorer(loaded.bundle)
        return cls(loaded, scorer, metrics, version_request_models(loaded.bundle))


@dataclass
class AppState:
    settings: Settings
    audit: AuditStore
    keys: KeyStore
    switch: ScoringSwitchStore
    model: ServedModel
    _versions: dict[str, LoadedModel] = field(default_factory=dict)
    _switch_cache: tuple[float, bool] = (0.0, True)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def scoring_enabled(self) -> bool:
        """The shared stop switch, re-read at most once a second."""
        enabled = self.cached_switch()
        if enabled is None:
            enabled = self.switch.state()[0]
            self._switch_cache = (time.monotonic(), enabled)
        return enabled

    def cached_switch(self) -> bool | None:
        """The stop switch as read less than a second ago, or None when it must be read again
        (async routes then read it in a worker thread rather than on the event loop)."""
        read_at, enabled = self._switch_cache
        return enabled if time.monotonic() - read_at <= SWITCH_CACHE_SECONDS else None

    def audit_writable(self) -> bool:
        """Whether the audit store takes a write now: a probe row is inserted, then rolled back.

        Taking a write lock proves little: SQLite grants one on a read-only file, and PostgreSQL
        lets a role without INSERT begin a transaction; only the write itself fails.
        """
        probe = {**_PROBE_ROW, "record_id": str(uuid.uuid4())}
        try:
            with write_transaction(self.audit.engine) as conn:
                conn.execute(sa.insert(audit_records).values(probe))
                raise _Probe
        except _Probe:
            return True
        except Exception:
            return False

    def forget_switch(self) -> None:
        self._switch_cache = (0.0, True)

    def model_version(self, version: str) -> LoadedModel:
        """A registered version for replay, verified on first use and then kept."""
        if version == self.model.loaded.version:
            return self.model.loaded
        with self._lock:
            if version not in self._versions:
                self._versions[version] = load_verified(self.settings, version)
            return self._versions[version]

    def reload(self) -> ServedModel:
        """Load whatever the alias points at now; the old model serves until this succeeds."""
        loaded = load_verified(self.settings)
        self.model = ServedModel.build(loaded, run_metrics(self.settings, loaded))
        return self.model


def open_state(settings: Settings, model: Any = None) -> AppState:
    """Open the stores (creating tables) and load the verified champion model."""
    audit = AuditStore.from_url(settings.resolved_audit_url)
    keys = KeyStore(audit.engine, cache_seconds=KEY_CACHE_SECONDS)
    switch = ScoringSwitchStore(audit.engine)
    audit.create_schema()
    keys.create_schema()
    switch.create_schema()
    loaded = model or load_verified(settings)
    served = ServedModel.build(loaded, run_metrics(settings, loaded))
    return AppState(settings, audit, keys, switch, served)
