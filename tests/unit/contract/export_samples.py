"""One small municipality export in its own words, the same people in the contract's words, and
the mapping between them: the fixture the mapping tests share.

Four people, keyed by personal identity number; Swedish column names and values; dates in
three written forms and one Excel date cell; work experience in months with a decimal comma;
a field not recorded (driving licence), a constant (municipality type) and a looked-up one
(local unemployment rate by intake month).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
from xlsx_files import write_xlsx

SECRET = b"0123456789abcdef0123456789abcdef-test-key"
IDENTITY_NUMBERS = ("19800101-1234", "800202-2345", "198003031236", "19750404 4567")

HEADER = [
    "Personnummer", "Datum", "Ålder", "Kön", "Region", "Tillstånd", "Skolår", "Utbildning",
    "Läsförmåga", "Arbete (mån)", "Yrke", "Svenska", "Engelska", "Hälsa", "Depression",
    "Ångest", "PTSD", "Kronisk", "Funktionsnedsättning", "Barn 0-5", "Barn 6-17",
    "Ensamstående", "Namn",
]  # fmt: skip
ROWS: list[list[object]] = [
    [IDENTITY_NUMBERS[0], "2020-03-15", 41, "Kvinna", "Östafrika", "Kvotflykting", 4,
     "Grundskola", "Begränsad", "18", "", "Ingen", "Ingen", 2, "Ja", "Nej", "Ja", "Nej",
     "Ingen", 2, 1, "Ja", "Anna Andersson"],
    [IDENTITY_NUMBERS[1], "2020/04/01", 33, "Man", "Mellanöstern", "Asyl", 9, "Gymnasium",
     "Läser och skriver", "24,5", "3", "SFI A", "Grundläggande", 4, "Nej", "Nej", "Nej", "Nej",
     "Fysisk", 0, 0, "Nej", "Bo Berg"],
    [IDENTITY_NUMBERS[2], "1/4/2020", 29, "Uppgift saknas", "Centralasien", "Asyl", 12,
     "Eftergymnasial kort", "läser och skriver", "0", "", "Ingen", "God", 5, "Nej", "Nej",
     "Nej", "Nej", "Ingen", 0, 0, "Nej", "Cy Ceder"],
    [IDENTITY_NUMBERS[3], dt.date(2020, 3, 20), 55, "kvinna", "Annan", "Anhöriginvandring", 0,
     "Ingen", "Nej", "120", "7", "SFI A", "Ingen", 1, "Ja", "Ja", "Nej", "Ja", "Psykisk", 1, 3,
     "Ja", "Dag Dal"],
]  # fmt: skip

# The same people as a contract-form export would carry them (case_ref added by the test).
CONTRACT_ROWS = [
    {"intake_date": "2020-03-15", "age": "41", "sex": "female", "region_of_origin": "east_africa",
     "permit_type": "quota_refugee", "years_of_schooling": "4",
     "education_level": "lower_secondary",
     "literacy": "limited", "work_experience_years": "1.5", "occupation_group": "",
     "swedish_level": "none", "english_level": "none", "self_rated_health": "2",
     "depression_symptoms": "true", "anxiety_symptoms": "false", "ptsd_symptoms": "true",
     "chronic_condition": "false", "disability": "none", "children_under_6": "2",
     "children_6_to_17": "1", "single_parent": "true", "municipality_type": "rural",
     "local_unemployment_rate": "7.5"},
    {"intake_date": "2020-04-01", "age": "33", "sex": "male", "region_of_origin": "middle_east",
     "permit_type": "asylum", "years_of_schooling": "9", "education_level": "upper_secondary",
     "literacy": "literate", "work_experience_years": str(24.5 / 12), "occupation_group": "3",
     "swedish_level": "sfi_a", "english_level": "basic", "self_rated_health": "4",
     "depression_symptoms": "false", "anxiety_symptoms": "false", "ptsd_symptoms": "false",
     "chronic_condition": "false", "disability": "physical", "children_under_6": "0",
     "children_6_to_17": "0", "single_parent": "false", "municipality_type": "rural",
     "local_unemployment_rate": "7.9"},
    {"intake_date": "2020-04-01", "age": "29", "sex": "", "region_of_origin": "central_asia",
     "permit_type": "asylum", "years_of_schooling": "12", "education_level": "post_secondary_short",
     "literacy": "literate", "work_experience_years": "0", "occupation_group": "",
     "swedish_level": "none", "english_level": "good", "self_rated_health": "5",
     "depression_symptoms": "false", "anxiety_symptoms": "false", "ptsd_symptoms": "false",
     "chronic_condition": "false", "disability": "none", "children_under_6": "0",
     "children_6_to_17": "0", "single_parent": "false", "municipality_type": "rural",
     "local_unemployment_rate": "7.9"},
    {"intake_date": "2020-03-20", "age": "55", "sex": "female", "region_of_origin": "other",
     "permit_type": "family_reunification", "years_of_schooling": "0", "education_level": "none",
     "literacy": "none", "work_experience_years": "10", "occupation_group": "7",
     "swedish_level": "sfi_a", "english_level": "none", "self_rated_health": "1",
     "depression_symptoms": "true", "anxiety_symptoms": "true", "ptsd_symptoms": "false",
     "chronic_condition": "true", "disability": "psychiatric", "children_under_6": "1",
     "children_6_to_17": "3", "single_parent": "true", "municipality_type": "rural",
     "local_unemployment_rate": "7.5"},
]  # fmt: skip

MAPPING = """\
mapping_version: 1
secret_file: {secret}
intake:
  file: {{sheet: Kartläggning, header_row: 3}}
  identity_number_column: Personnummer
  columns:
    Datum: intake_date
    Ålder: age
    Kön: sex
    Region: region_of_origin
    Tillstånd: permit_type
    Skolår: years_of_schooling
    Utbildning: education_level
    Läsförmåga: literacy
    Arbete (mån): work_experience_years
    Yrke: occupation_group
    Svenska: swedish_level
    Engelska: english_level
    Hälsa: self_rated_health
    Depression: depression_symptoms
    Ångest: anxiety_symptoms
    PTSD: ptsd_symptoms
    Kronisk: chronic_condition
    Funktionsnedsättning: disability
    Barn 0-5: children_under_6
    Barn 6-17: children_6_to_17
    Ensamstående: single_parent
  values:
    sex: {{Kvinna: female, Man: male, Uppgift saknas: null}}
    region_of_origin: {{Östafrika: east_africa, Mellanöstern: middle_east,
      Centralasien: central_asia, Annan: other}}
    permit_type: {{Kvotflykting: quota_refugee, Asyl: asylum,
      Anhöriginvandring: family_reunification}}
    education_level: {{Ingen: none, Grundskola: lower_secondary, Gymnasium: upper_secondary,
      Eftergymnasial kort: post_secondary_short}}
    literacy: {{Nej: none, Begränsad: limited, Läser och skriver: literate}}
    swedish_level: {{Ingen: none, SFI A: sfi_a}}
    english_level: {{Ingen: none, Grundläggande: basic, God: good}}
    depression_symptoms: {{Ja: true, Nej: false}}
    anxiety_symptoms: {{Ja: true, Nej: false, Vet ej: null}}
    ptsd_symptoms: {{Ja: true, Nej: false}}
    chronic_condition: {{Ja: true, Nej: false}}
    single_parent: {{Ja: true, Nej: false}}
    disability: {{Ingen: none, Fysisk: physical, Psykisk: psychiatric}}
  dates:
    intake_date: ["%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y"]
  decimal_comma: true
  units:
    work_experience_years: {{divide_by: 12}}
  constants:
    municipality_type: rural
  lookups:
    local_unemployment_rate: {{table: unemployment.csv, by: month}}
  not_recorded: [driving_licence]
outcomes:
  identity_number_column: Pnr
  columns:
    Egen försörjning: settled_date
    Utflyttad: lost_to_followup_date
    Intensifierat stöd: received_intensified_support
  values:
    received_intensified_support: {{Ja: true, Nej: false}}
  dates:
    settled_date: ["%d/%m/%Y"]
  constants:
    extract_date: 2024-01-31
"""

OUTCOME_HEADER = ["Pnr", "Egen försörjning", "Utflyttad", "Intensifierat stöd"]
OUTCOME_ROWS = [
    [IDENTITY_NUMBERS[0], "10/1/2021", "", "Nej"],
    ["198002022345", "", "2022-05-01", "Nej"],  # the same person as "800202-2345"
    [IDENTITY_NUMBERS[2], "1/6/2021", "", "Ja"],
    ["197504044567", "", "", "Nej"],
]
CONTRACT_OUTCOMES = [
    {"settled_date": "2021-01-10", "lost_to_followup_date": "",
     "received_intensified_support": "false", "extract_date": "2024-01-31"},
    {"settled_date": "", "lost_to_followup_date": "2022-05-01",
     "received_intensified_support": "false", "extract_date": "2024-01-31"},
    {"settled_date": "2021-06-01", "lost_to_followup_date": "",
     "received_intensified_support": "true", "extract_date": "2024-01-31"},
    {"settled_date": "", "lost_to_followup_date": "",
     "received_intensified_support": "false", "extract_date": "2024-01-31"},
]  # fmt: skip


def write_export(
    folder: Path, rows: list[list[object]] | None = None, mapping: str = MAPPING
) -> tuple[Path, Path, Path]:
    """The intake workbook (title rows above the header), outcome CSV, mapping and its files."""
    secret = folder.parent / f"{folder.name}-secret.key"  # beside, not inside, the export
    secret.write_bytes(SECRET + b"\n")
    (folder / "unemployment.csv").write_text("month;value\n2020-03;7,5\n2020-04;7,9\n")
    sheet = [["Kartläggning 2020"], [], HEADER, *(ROWS if rows is None else rows)]
    intake = write_xlsx(folder / "kartlaggning.xlsx", {"Info": [["x"]], "Kartläggning": sheet})
    outcomes = folder / "utfall.csv"
    pd.DataFrame(OUTCOME_ROWS, columns=OUTCOME_HEADER).to_csv(outcomes, sep=";", index=False)
    path = folder / "mapping.yaml"
    path.write_text(mapping.format(secret=secret), encoding="utf-8")
    return intake, outcomes, path


def mapping_line(text: str, fragment: str) -> int:
    """The 1-based line of the mapping (a template like `MAPPING`) that holds `fragment`."""
    lines = text.format(secret="-").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if fragment in line)
