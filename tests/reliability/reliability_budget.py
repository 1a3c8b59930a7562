"""How hard the reliability tests push: the test command's counts or the stress mode's."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace

DEFAULT_SEED = 20_260_601


@dataclass(frozen=True)
class Budget:
    """How hard each test pushes; `stress` raises every count."""

    stress: bool
    seed: int
    fuzz_examples: int  # per operation, per role
    kill_points: int  # SIGKILLs on SQLite
    pg_kill_points: int  # SIGKILLs on PostgreSQL
    overload_seconds: float  # at twice the concurrency limit
    concurrent_records: int  # scores and decisions by 8 clients on 2 workers


def budget_from_env() -> Budget:
    stress = os.environ.get("RISKSCREEN_STRESS", "") not in ("", "0")
    seed = int(os.environ.get("RISKSCREEN_FUZZ_SEED") or 0) or (
        random.SystemRandom().randrange(1, 2**31) if stress else DEFAULT_SEED
    )
    budget = (
        Budget(True, seed, 1000, 1000, 100, 30.0, 10_000)
        if stress
        else Budget(False, seed, 200, 30, 6, 8.0, 10_000)
    )
    # Shortened runs (never below the test command's counts unless asked for explicitly).
    overrides = {
        "fuzz_examples": os.environ.get("RISKSCREEN_FUZZ_EXAMPLES"),
        "kill_points": os.environ.get("RISKSCREEN_KILL_POINTS"),
    }
    return replace(budget, **{k: int(v) for k, v in overrides.items() if v})
