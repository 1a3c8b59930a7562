"""A municipality's mapping file, loaded and checked whole before any export is read.

`load_mapping` reads the YAML keeping each key's line (`yaml_lines`), validates its structure
(`mapping_spec`, unknown keys rejected), checks names and values against the contract
(`mapping_checks`), reads the lookup tables and the key for pseudonymous case references, and
reports the mistakes each as `mapping.yaml line 12: ...` (all of them, once the structure is
sound enough to check names and values). The result is what
`export.read_export` applies; a mapping that loads has no mistake left that the export itself
cannot reveal (a column it lacks, a value nobody mapped).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pydantic import SecretBytes, ValidationError

from riskscreen.contract.lookup import LookupTableError, read_lookup
from riskscreen.contract.mapping_checks import Issue, Source, check_section
from riskscreen.contract.mapping_spec import MappingSpec, OutcomeSection
from riskscreen.contract.pseudonym import SecretFileError, read_secret
from riskscreen.contract.schema import FIELDS_BY_NAME
from riskscreen.contract.yaml_lines import LocatedYaml, YamlLineError, YamlPath, load_located

SECRET_FILE_ENV = "RISKSCREEN_CASE_REF_SECRET_FILE"
SECTIONS = ("intake", "outcomes")


@dataclass(frozen=True)
class MappingIssue:
    """One mistake in a mapping file, at its 1-based line."""

    file: str
    line: int
    message: str

    def describe(self) -> str:
        return f"{self.file} line {self.line}: {self.message}"


class MappingError(ValueError):
    """The mapping cannot be used; `issues` lists every mistake found, in line order."""

    def __init__(self, issues: list[MappingIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: i.line)
        super().__init__("\n".join(i.describe() for i in self.issues))


@dataclass(frozen=True)
class ExportMapping:
    """A checked mapping, ready to read exports with (see `export.read_export`)."""

    spec: MappingSpec
    file: str
    located: LocatedYaml
    sources: dict[str, dict[str, Source]]
    lookups: dict[str, pd.Series]
    secret: SecretBytes | None = field(default=None, repr=False)

    def section(self, name: str) -> OutcomeSection:
        return self.spec.intake if name == "intake" else self.spec.outcomes

    def where(self, path: YamlPath) -> str:
        """`mapping.yaml line 12`: the place of `path` (or its nearest written ancestor)."""
        return f"{self.file} line {self.located.line(path)}"

    @property
    def not_recorded(self) -> tuple[str, ...]:
        """The intake fields the municipality does not record, in declared order."""
        return tuple(f for f in FIELDS_BY_NAME if f in self.spec.intake.not_recorded)


def _structure_issues(exc: ValidationError, located: LocatedYaml) -> list[tuple[int, str]]:
    """Pydantic's errors at the line of their key; a union's several errors become one."""
    by_path: dict[YamlPath, list[str]] = {}
    for error in exc.errors():
        loc = tuple(error["loc"])
        end = next((n for n in range(len(loc), 0, -1) if loc[:n] in located.lines), 0)
        path = loc[:end] if error["type"] != "missing" else loc
        message = {
            "extra_forbidden": f"unknown key {str(loc[-1])!r}",
            "missing": f"{'.'.join(map(str, loc))} is missing",
        }.get(error["type"], f"{'.'.join(map(str, loc[:end])) or 'the file'}: {error['msg']}")
        by_path.setdefault(path, []).append(message)
    return [
        (
            located.line(path),
            messages[0]
            if len(messages) == 1
            else f"{'.'.join(map(str, path))}: not a value of a type that fits here",
        )
        for path, messages in by_path.items()
    ]


def _lookup_issues(spec: MappingSpec, base: Path) -> tuple[dict[str, pd.Series], list[Issue]]:
    tables: dict[str, pd.Series] = {}
    issues: list[Issue] = []
    for name, lookup in spec.intake.lookups.items():
        if name not in FIELDS_BY_NAME:
            continue  # reported as an unknown field already
        try:
            tables[name] = read_lookup(base / lookup.table, lookup.by, FIELDS_BY_NAME[name])
        except LookupTableError as exc:
            issues += [(("intake", "lookups", name), f"lookup table: {r}") for r in exc.reasons]
    return tables, issues


def _secret(
    spec: MappingSpec, base: Path, environ: Mapping[str, str]
) -> tuple[SecretBytes | None, list[Issue]]:
    """The key, read only when a section turns identity numbers into case references."""
    users = [n for n in SECTIONS if getattr(spec, n).identity_number_column is not None]
    if not users:
        return None, []
    where: YamlPath = (users[0], "identity_number_column")
    if spec.secret_file is not None:
        path, where, label = base / spec.secret_file, ("secret_file",), "secret_file"
    elif environ.get(SECRET_FILE_ENV):
        path, label = Path(environ[SECRET_FILE_ENV]), SECRET_FILE_ENV
    else:
        return None, [
            (
                where,
                "identity numbers become case references with a secret key: name its file as "
                f"secret_file or in {SECRET_FILE_ENV}",
            )
        ]
    try:
        return SecretBytes(read_secret(path)), []
    except SecretFileError as exc:
        return None, [(where, f"{label}: {exc}")]


def load_mapping(path: Path, *, environ: Mapping[str, str] | None = None) -> ExportMapping:
    """Read and check a mapping file; lookup tables and the secret file are read relative to it.

    Args:
        path: the YAML file.
        environ: where `RISKSCREEN_CASE_REF_SECRET_FILE` is looked up (default: the process's).

    Raises:
        MappingError: every mistake found, each with its line.
    """
    name = path.name
    try:
        located = load_located(path.read_text(encoding="utf-8"))
    except YamlLineError as exc:
        raise MappingError([MappingIssue(name, exc.line, exc.message)]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError([MappingIssue(name, 1, f"cannot be read ({exc})")]) from exc
    if not isinstance(located.data, dict):
        raise MappingError([MappingIssue(name, 1, "a mapping file holds keys and values")])
    try:
        spec = MappingSpec.model_validate(located.data)
    except ValidationError as exc:
        issues = [MappingIssue(name, line, m) for line, m in _structure_issues(exc, located)]
        raise MappingError(issues) from exc
    found: list[Issue] = []
    sources: dict[str, dict[str, Source]] = {}
    for section in SECTIONS:
        sources[section], section_issues = check_section(
            section, getattr(spec, section), located.line
        )
        found += section_issues
    tables, lookup_issues = _lookup_issues(spec, path.parent)
    secret, secret_issues = _secret(spec, path.parent, os.environ if environ is None else environ)
    found += lookup_issues + secret_issues
    if found:
        raise MappingError([MappingIssue(name, located.line(p), m) for p, m in found])
    return ExportMapping(spec, name, located, sources, tables, secret)
