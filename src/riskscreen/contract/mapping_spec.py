"""The mapping file's format: how a municipality's own export becomes the contract's tables.

A versioned YAML file (`mapping_version: 1`) parsed into these pydantic models, which reject
unknown keys (a misspelt option that silently fell back to its default would misread every row).
What the models cannot know, whether a name is a contract field or a value one the contract
allows, `mapping_checks` checks; `mapping.load_mapping` does both and names the line.

```yaml
mapping_version: 1
secret_file: /etc/riskscreen/case-ref.key   # or RISKSCREEN_CASE_REF_SECRET_FILE
intake:
  file: {sheet: Kartläggning, header_row: 3}  # Excel sheet; the row holding the column names
  identity_number_column: Personnummer        # becomes case_ref by a keyed hash
  columns: {Datum: intake_date, Ålder: age, Kön: sex}   # export column: contract field
  values:                                     # per field, export value: contract value
    sex: {Kvinna: female, Man: male, Uppgift saknas: null}   # null: unknown for this person
  dates: {intake_date: ["%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y"]}  # tried in order, then ISO
  decimal_comma: true
  units: {work_experience_years: {divide_by: 12}}            # months to years
  constants: {municipality_type: rural}
  lookups: {local_unemployment_rate: {table: unemployment.csv, by: month}}
  not_recorded: [driving_licence]
outcomes:
  identity_number_column: Personnummer
  columns: {Egen försörjning: settled_date}
```
A field the mapping does not name is read from the export's column of the same name.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAPPING_VERSION = 1
# What an export value may be mapped onto: a contract value as YAML types it, or null (unknown).
Target = bool | int | float | str | None
Constant = bool | int | float | dt.date | str


class _Strict(BaseModel):
    # A sheet or column named "2024" is still a name, though YAML reads it as a number.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: object) -> object:
        """A key left empty (`values:` with every entry commented out) keeps its default."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


class FileOptions(_Strict):
    """How to find the table in the file (CSV delimiter and encoding are detected)."""

    sheet: str | None = None
    header_row: int = Field(1, ge=1)


class Lookup(_Strict):
    """A value looked up by the intake's month (YYYY-MM) or year (YYYY) in a small CSV table.

    The table has two columns, `month` (or `year`) and `value`; a relative path is read from
    the mapping file's folder.
    """

    table: Path
    by: Literal["month", "year"]


class UnitConversion(_Strict):
    """Exactly one of the two, e.g. `divide_by: 12` for months of work experience to years."""

    multiply_by: float | None = Field(None, gt=0)
    divide_by: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> UnitConversion:
        if (self.multiply_by is None) == (self.divide_by is None):
            raise ValueError("give exactly one of multiply_by and divide_by")
        return self

    @property
    def factor(self) -> float:
        return self.multiply_by if self.multiply_by is not None else 1 / (self.divide_by or 1)


class OutcomeSection(_Strict):
    """The outcome export: every outcome field is needed for the label, none may be missing."""

    file: FileOptions = FileOptions()
    identity_number_column: str | None = None
    columns: dict[str, str] = {}
    values: dict[str, dict[str, Target]] = {}
    dates: dict[str, list[str]] = {}
    constants: dict[str, Constant] = {}


class IntakeSection(OutcomeSection):
    """The intake export; it alone has numbers, lookups and fields not recorded."""

    decimal_comma: bool = False
    units: dict[str, UnitConversion] = {}
    lookups: dict[str, Lookup] = {}
    not_recorded: list[str] = []


class MappingSpec(_Strict):
    """The whole file: one section per export."""

    mapping_version: Literal[1]
    secret_file: Path | None = None
    intake: IntakeSection
    outcomes: OutcomeSection = OutcomeSection()
