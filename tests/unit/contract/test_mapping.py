"""A mistake in a mapping file is reported with its file and line, before any export is read."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from export_samples import MAPPING, SECRET, mapping_line, write_export

from riskscreen.contract.mapping import SECRET_FILE_ENV, MappingError, load_mapping


def _issues(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(MappingError) as err:
        load_mapping(path, environ=environ or {})
    return [i.describe() for i in err.value.issues]


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            "    Ålder: agee\n",
            4,
            "'agee' is not a field of the intake contract (did you mean 'age'?)",
        ),
        (
            "    Ålder: age\n    Age: age\n",
            5,
            "age is given twice: by the column 'Ålder' (line 4) and by the column 'Age'",
        ),
        ("    Kön: sex\n  constants: {sex: female}\n", 5, "sex is given twice"),
        (
            "    Kön: sex\n  values: {sex: {Kvinna: woman}}\n",
            5,
            "sex: 'Kvinna' is mapped onto "
            "'woman', which is not one of the allowed: female, male, other",
        ),
        (
            "    Hälsa: self_rated_health\n  values: {self_rated_health: {Mycket bra: 6}}\n",
            5,
            "'Mycket bra' is mapped onto '6', which is above the maximum 5",
        ),
        (
            "    D: depression_symptoms\n  values:\n"
            "    depression_symptoms: {Ja: yes, Kanske: maybe}\n",
            6,
            "'Kanske' is mapped onto 'maybe', which is not a boolean",
        ),
        (
            "    D: intake_date\n  dates:\n    intake_date: ['%Y-%m-%d', '%Y-%m']\n",
            6,
            "'%Y-%m' does not read a day, a month and a year",
        ),
        (
            "    D: intake_date\n  dates:\n    intake_date:\n      - '%d/%m/%Q'\n",
            7,
            "'%d/%m/%Q' is not a date format",
        ),
        ("    D: age\n  dates: {age: ['%Y']}\n", 5, "age holds integer values, not date"),
        ("    K: sex\n  units: {sex: {divide_by: 12}}\n", 5, "sex holds category values"),
        ("  colums: {}\n", 4, "unknown key 'colums'"),
        (
            "  units: {work_experience_years: {divide_by: 12, multiply_by: 2}}\n",
            4,
            "give exactly one of multiply_by and divide_by",
        ),
        (
            "  constants: {municipality_type: village}\n",
            4,
            "the constant for municipality_type is not one of the allowed",
        ),
        ("  not_recorded: [intake_date]\n", 4, "intake_date cannot be not_recorded"),
        ("  constants: {case_ref: X1}\n", 4, "case_ref cannot be a constant"),
        ("    K: sex\n  values: {sex: {Ja: female, ja: male}}\n", 5, "'Ja' and 'ja' are one word"),
        ("    K: sex\n    K: age\n", 5, "the key 'K' appears twice here"),
        ("    K: [sex\n", 5, "not valid YAML"),
    ],
)
def test_each_mistake_names_its_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    issues = _issues(tmp_path, "mapping_version: 1\nintake:\n  columns:\n" + body)
    assert any(i.startswith(f"mapping.yaml line {line}: ") and message in i for i in issues), issues


def test_every_mistake_is_reported_at_once(tmp_path: Path) -> None:
    issues = _issues(
        tmp_path,
        """\
        mapping_version: 1
        intake:
          columns: {Ålder: agee, Kön: sex}
          values:
            sex: {Kvinna: woman}
        outcomes:
          columns: {Egen: settled}
        """,
    )
    assert [i.split(":")[0] for i in issues] == [
        "mapping.yaml line 3",
        "mapping.yaml line 5",
        "mapping.yaml line 7",
    ]


def test_the_version_and_the_sections_are_required(tmp_path: Path) -> None:
    assert _issues(tmp_path, "mapping_version: 2\nintake: {}\n") == [
        "mapping.yaml line 1: mapping_version: Input should be 1"
    ]
    assert _issues(tmp_path, "intake: {}\n") == ["mapping.yaml line 1: mapping_version is missing"]
    assert _issues(tmp_path, "- a list\n") == [
        "mapping.yaml line 1: a mapping file holds keys and values"
    ]


def test_outcomes_have_no_fields_not_recorded(tmp_path: Path) -> None:
    issues = _issues(tmp_path, "mapping_version: 1\nintake: {}\noutcomes:\n  not_recorded: []\n")
    assert issues == ["mapping.yaml line 4: unknown key 'not_recorded'"]


def test_lookup_tables_are_checked_with_the_mapping(tmp_path: Path) -> None:
    (tmp_path / "rates.csv").write_text("month,value\n2020-13,7.5\n2020-02,45\n2020-02,3\n")
    issues = _issues(
        tmp_path,
        """\
        mapping_version: 1
        intake:
          lookups:
            local_unemployment_rate: {table: rates.csv, by: month}
            age: {table: absent.csv, by: year}
        """,
    )
    assert issues[:3] == [
        "mapping.yaml line 4: lookup table: rates.csv data row 1: month is not a month (YYYY-MM)",
        "mapping.yaml line 4: lookup table: rates.csv data row 3: month 2020-02 appears on more "
        "than one row",
        "mapping.yaml line 4: lookup table: rates.csv data row 2: value is above the maximum 40",
    ]
    assert issues[3].startswith("mapping.yaml line 5: lookup table: absent.csv: cannot be read")


def test_identity_numbers_need_a_secret_kept_outside_any_repository(tmp_path: Path) -> None:
    text = "mapping_version: 1\n{secret}intake:\n  identity_number_column: Personnummer\n"
    assert _issues(tmp_path, text.format(secret="")) == [
        "mapping.yaml line 3: identity numbers become case references with a secret key: name "
        f"its file as secret_file or in {SECRET_FILE_ENV}"
    ]
    short = tmp_path / "short.key"
    short.write_bytes(b"too short\n")
    assert _issues(tmp_path, text.format(secret=f"secret_file: {short}\n")) == [
        "mapping.yaml line 2: secret_file: the secret file holds 9 bytes; it needs at least 32 "
        "(e.g. `openssl rand -hex 32 > FILE`)"
    ]
    repository = tmp_path / "repo"
    (repository / ".git").mkdir(parents=True)
    (repository / "keys").mkdir()
    (repository / "keys" / "k.key").write_bytes(SECRET)
    issues = _issues(
        tmp_path, text.format(secret=""), {SECRET_FILE_ENV: str(repository / "keys" / "k.key")}
    )
    assert issues == [
        f"mapping.yaml line 3: {SECRET_FILE_ENV}: the secret file lies inside the git working "
        f"tree {repository}; keep it outside any repository"
    ]
    missing = _issues(tmp_path, text.format(secret="secret_file: absent.key\n"))
    assert missing == [
        "mapping.yaml line 2: secret_file: the secret file cannot be read (No "
        "such file or directory)"
    ]


def test_a_sound_mapping_loads_and_never_shows_its_secret(tmp_path: Path) -> None:
    _, _, path = write_export(tmp_path)
    mapping = load_mapping(path)
    assert mapping.secret is not None and mapping.secret.get_secret_value() == SECRET
    assert SECRET.decode() not in repr(mapping) and SECRET.decode() not in str(mapping.spec)
    assert mapping.not_recorded == ("driving_licence",)
    assert mapping.where(("intake", "columns", "Ålder")) == (
        f"mapping.yaml line {mapping_line(MAPPING, 'Ålder:')}"
    )
    assert mapping.sources["intake"]["case_ref"].kind == "identity"
    assert mapping.lookups["local_unemployment_rate"].to_dict() == {
        "2020-03": "7.5",
        "2020-04": "7.9",
    }


def test_keys_stay_the_exports_own_words(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "mapping_version: 1\nintake:\n  columns: {2024: age}\n"
        "  values: {driving_licence: {No: false, Yes: true, 1: true}}\n"
    )
    spec = load_mapping(path, environ={}).spec
    assert spec.intake.columns == {"2024": "age"}
    assert spec.intake.values["driving_licence"] == {"No": False, "Yes": True, "1": True}
