"""Synthetic intake cohorts with a known truth, calibrated to published Swedish figures.

No individual intake data are public, so riskscreen is developed and tested on cohorts from this
generator. Its value over real data is the ground truth: every person's true probability of a
long settlement under usual care (the oracle), so that a model can be compared with the best
achievable, and the uncensored settlement times, so that labels and censoring can be checked.

The generative story (causal order; parameters and sources in synth/synth.yaml):

1. Time and place. Intake dates spread over the configured years; the extraction date is fixed.
   The labour market changes between intake years: a local unemployment rate by year and
   municipality type (plus noise), and a per-year hazard multiplier with a downturn (2020).
2. Who arrives. Permit type (quota / asylum / family reunification) drives sex (asylum mostly
   men, reunification mostly women); age; region of origin.
3. Human capital. Schooling on region and sex (less among women); education level from the
   years; literacy on schooling; work experience on age, sex and schooling, with an SSYK
   occupation group iff some experience; Swedish on permit type (quota refugees arrive with
   none, asylum seekers often started SFI while waiting) and schooling; English on schooling.
4. Health. Depression, anxiety and PTSD screens share a latent factor (Gaussian copula); a
   diagnosed PTSD (hidden, not an intake field) leans on the PTSD screen; chronic condition and
   disability rise with age, psychiatric disability with the mental-health factor; self-rated
   health on all of these.
5. Family. Children under 6 and 6-17 on age and sex; single parents mostly women with children;
   driving licence on sex, schooling and age.
6. Outcome. Time T to the first month in work or studies: Weibull proportional hazards in the
   traits, with the year effect and interactions (short schooling x no Swedish, young children
   x single parent); see synth_outcomes. Intensified support goes more often to people at
   higher true risk and speeds them up. Loss to follow-up is an independent exponential time.
   Outcome dates are recorded only when they happen before the extraction.

Cohorts are generated in fixed-size chunks, each with a child of `SeedSequence(seed)`, so memory
stays bounded; the same seed, config and library versions give the same bytes in every file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from rich.console import Console
from rich.progress import Progress

from riskscreen.contract.identity import looks_like_personal_number
from riskscreen.contract.schema import INTAKE_FIELDS, OUTCOME_COLUMNS, IntakeField
from riskscreen.synth.card import Tally, render_data_card
from riskscreen.synth.config import SynthConfig
from riskscreen.synth.outcomes import observed_dates, sample_outcomes
from riskscreen.synth.traits import EPOCH, Arrays, sample_traits

__all__ = ["Cohort", "SynthConfig", "generate_cohort", "load_synth_config", "write_cohort"]

logger = logging.getLogger(__name__)

MAX_PEOPLE = 999_999_999  # case references carry 9 digits: never the 10 or 12 of an identity number
LATENT_COLUMNS = (
    "linear_predictor",
    "horizon_days",
    "time_to_settlement_usual_days",
    "time_to_settlement_days",
    "lost_days",
    "diagnosed_ptsd",
    "p_intensified_support",
)
PARQUET_FILES = ("intake.parquet", "outcomes.parquet", "oracle.parquet")


def load_synth_config(path: Path | None = None) -> SynthConfig:
    """Read and validate a generator config; None reads the packaged synth/synth.yaml."""
    if path is None:
        text = resources.files("riskscreen.synth").joinpath("synth.yaml").read_text("utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return SynthConfig.model_validate(yaml.safe_load(text))


@dataclass(frozen=True)
class Cohort:
    """One generated cohort: what a municipality would export, plus the truth behind it."""

    intake: pd.DataFrame
    outcomes: pd.DataFrame
    oracle: pd.DataFrame
    latent: pd.DataFrame
    data_card: str = ""


def generate_cohort(
    n: int,
    seed: int,
    config: SynthConfig | None = None,
    *,
    horizon_months: int = 24,
    progress: bool = False,
) -> Cohort:
    """Generate `n` people in memory; the same arguments always give the same cohort."""
    cfg = config or load_synth_config()
    _check_args(n, seed, horizon_months, cfg)
    parts, tally = [], Tally()
    for chunk, arrays in _iter_chunk_pairs(n, seed, cfg, horizon_months, progress):
        tally.add(*arrays)
        parts.append(chunk)
    frames = {
        name: pd.concat([getattr(p, name) for p in parts], ignore_index=True)
        for name in ("intake", "outcomes", "oracle", "latent")
    }
    card = render_data_card(cfg, tally, n=n, seed=seed, horizon_months=horizon_months)
    return Cohort(**frames, data_card=card)


def read_oracle(path: Path) -> pd.DataFrame:
    """The true probabilities `write_cohort` put beside a cohort (`oracle.parquet`), checked:
    one probability in (0, 1) per `case_ref`."""
    oracle = pd.read_parquet(path, columns=["case_ref", "p_long_settlement"])
    p = oracle["p_long_settlement"].to_numpy(dtype=np.float64)
    if oracle["case_ref"].duplicated().any() or not ((p > 0) & (p < 1)).all():
        raise ValueError(f"{path}: not an oracle (one probability in (0, 1) per case_ref)")
    return oracle


def write_cohort(
    out_dir: Path,
    *,
    n: int,
    seed: int,
    horizon_months: int = 24,
    config: SynthConfig | None = None,
    progress: bool = False,
) -> str:
    """Write intake, outcomes, oracle (Parquet) and DATA_CARD.md; return a short summary.

    Chunks are streamed to the files as row groups, so memory does not grow with `n`. The
    files are written under temporary names and renamed at the end: a failed run never leaves
    a valid-looking but truncated cohort behind.
    """
    cfg = config or load_synth_config()
    _check_args(n, seed, horizon_months, cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = {name: out_dir / f".{name}.partial" for name in PARQUET_FILES}
    tally = Tally()
    try:
        with ExitStack() as stack:
            writers: dict[Path, pq.ParquetWriter] = {}
            for chunk, arrays in _iter_chunk_pairs(n, seed, cfg, horizon_months, progress):
                tally.add(*arrays)
                frames = (chunk.intake, chunk.outcomes, chunk.oracle)
                for path, frame in zip(partial.values(), frames, strict=True):
                    _append(stack, writers, path, frame)
    except BaseException:
        for path in partial.values():
            path.unlink(missing_ok=True)
        raise
    for name, path in partial.items():
        path.replace(out_dir / name)
    card = render_data_card(cfg, tally, n=n, seed=seed, horizon_months=horizon_months)
    (out_dir / "DATA_CARD.md").write_text(card, encoding="utf-8")
    logger.info("wrote %d people to %s", n, out_dir)
    return tally.summary(n=n, seed=seed, horizon_months=horizon_months, out_dir=out_dir)


def _append(
    stack: ExitStack, writers: dict[Path, pq.ParquetWriter], path: Path, frame: pd.DataFrame
) -> None:
    """Append one chunk as a row group, opening the file on the first chunk."""
    if path not in writers:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        writers[path] = stack.enter_context(
            pq.ParquetWriter(path, table.schema, compression="zstd")
        )
    else:
        table = pa.Table.from_pandas(frame, schema=writers[path].schema, preserve_index=False)
    writers[path].write_table(table)


# --- chunking ------------------------------------------------------------------------------


def _check_args(n: int, seed: int, horizon_months: int, cfg: SynthConfig) -> None:
    """Fail before anything is written; the seed is part of every case reference."""
    if not 1 <= n <= MAX_PEOPLE:
        raise ValueError(f"n must be between 1 and {MAX_PEOPLE:,}")
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    if horizon_months < 1:
        raise ValueError("horizon_months must be at least 1")
    prefix = cfg.generation.case_ref_prefix
    if looks_like_personal_number(case_refs(prefix, seed, 0, 1).iloc[0]):
        raise ValueError(
            f"seed {seed} (after the prefix {prefix!r}) would put an identity-number shape in "
            "the case references"
        )


def _chunk_sizes(n: int, chunk_size: int) -> list[int]:
    full, rest = divmod(n, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def _iter_chunk_pairs(
    n: int, seed: int, cfg: SynthConfig, horizon_months: int, progress: bool
) -> Iterator[tuple[Cohort, tuple[Arrays, Arrays]]]:
    """Each chunk as frames plus the raw arrays (for the data card's tallies)."""
    sizes = _chunk_sizes(n, cfg.generation.chunk_size)
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    with Progress(console=Console(stderr=True), disable=not progress, transient=True) as bar:
        task = bar.add_task("Generating cohort", total=len(sizes))
        start = 0
        for size, child in zip(sizes, seeds, strict=True):
            rng = np.random.default_rng(child)
            traits = sample_traits(rng, cfg, size)
            outcomes = sample_outcomes(rng, traits, cfg, horizon_months)
            refs = case_refs(cfg.generation.case_ref_prefix, seed, start, size)
            yield _frames(refs, traits, outcomes, cfg), (traits, outcomes)
            start += size
            bar.advance(task)


# --- frames --------------------------------------------------------------------------------


def case_refs(prefix: str, seed: int, start: int, size: int) -> pd.Series:
    """Opaque references like S2026-000000001: a letter, the seed, a hyphen, nine digits.

    The identity guard reads the hyphen as a separator, so a seed of one or three digits is
    written with a leading zero (S07-000000001 for seed 7): 1 + 9 or 3 + 9 digits are the 10 or
    12 of an identity number. A seed of 10 or 12 digits is refused by `_check_args`.
    """
    written = f"0{seed}" if len(str(seed)) in (1, 3) else str(seed)
    numbers = pd.Series(np.arange(start + 1, start + size + 1)).astype(str).str.zfill(9)
    return f"{prefix}{written}-" + numbers


def _days_to_dates(days: np.ndarray | int) -> np.ndarray:
    return np.asarray(days).astype("datetime64[D]").astype("datetime64[us]")


def _column(f: IntakeField, values: np.ndarray) -> pd.Series | np.ndarray:
    """One intake column in its canonical dtype, from the generator's array for it."""
    if f.kind == "category":
        dtype = pd.CategoricalDtype(categories=list(f.categories), ordered=f.ordered)
        return pd.Series(pd.Categorical.from_codes(values.astype(np.int64), dtype=dtype))
    if f.kind == "integer":
        return values.astype(np.int64)
    if f.kind == "number":
        return values.astype(np.float64)
    if f.kind == "boolean":
        return values.astype(bool)
    if f.kind == "date":
        return _days_to_dates(values)
    raise TypeError(f"no generator for field {f.name} of kind {f.kind}")


def _frames(refs: pd.Series, t: Arrays, o: Arrays, cfg: SynthConfig) -> Cohort:
    """The four frames of one chunk, columns and dtypes exactly as the schema declares."""
    n = len(refs)
    values = {**t, "intake_date": t["intake_day"]}
    intake = pd.DataFrame(
        {
            f.name: refs if f.name == "case_ref" else _column(f, values[f.name])
            for f in INTAKE_FIELDS
        }
    )
    extract_day = (cfg.calendar.extract_date - EPOCH).days
    settled, lost = observed_dates(
        t["intake_day"], o["time_to_settlement_days"], o["lost_days"], extract_day
    )
    outcome_values = {
        "case_ref": refs,
        "settled_date": settled,
        "lost_to_followup_date": lost,
        "received_intensified_support": o["received_intensified_support"].astype(bool),
        "extract_date": np.repeat(_days_to_dates(extract_day), n),
    }
    outcomes = pd.DataFrame({name: outcome_values[name] for name in OUTCOME_COLUMNS})
    oracle = pd.DataFrame({"case_ref": refs, "p_long_settlement": o["p_long_settlement"]})
    hidden = {**o, "diagnosed_ptsd": t["diagnosed_ptsd"]}
    latent = pd.DataFrame({"case_ref": refs} | {c: hidden[c] for c in LATENT_COLUMNS})
    return Cohort(intake=intake, outcomes=outcomes, oracle=oracle, latent=latent)
