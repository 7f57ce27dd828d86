"""Hostile and broken inputs fail fast, in one line, and change nothing (issue #9, parts 5 and 6).

Policy files: a YAML "billion laughs", deep nesting, recursive anchors, oversized files, bad UTF-8, and
a policy with 20,000 datasets (validated in linear time). Cut-offs that overflow once converted to UTC.
Database files that are not DuckDB databases (SQLite, random bytes, empty, truncated): refused before
DuckDB opens them, never modified, no extension downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from consentgate.engine import policy as policy_module
from consentgate.engine.policy import load
from consentgate.engine.session import open_duckdb
from consentgate.errors import InvalidAsOfError, NotADatabaseError, PolicyError

CG = str(Path(sys.executable).with_name("consentgate"))
GOOD_TAIL = (
    "purposes:\n  - {name: ads, description: Ads.}\n"
    "datasets:\n  - {name: w, source: raw.w, target: ok.w, subject_column: c, purpose: ads}\n"
)


def cg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CG, *args], capture_output=True, text=True, timeout=120)


def one_error_line(p: subprocess.CompletedProcess) -> str:
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    (line,) = p.stderr.strip().splitlines()
    assert line.startswith("consentgate: error: ")
    return line


# -- policy files ----------------------------------------------------------------------------------

LAUGHS = (
    "version:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(
        f"  {c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + GOOD_TAIL.replace("description: Ads.", "description: *i")
)


@pytest.mark.parametrize(
    "text,match",
    [
        (LAUGHS, r"expands to more than 2,000,000 values once its aliases are resolved at line \d+"),
        ("version: " + "[" * 100 + "]" * 100 + "\n" + GOOD_TAIL, r"nests deeper than 32 levels at line 1"),
        ("version: &a [*a]\n" + GOOD_TAIL, r"refers to anchor 'a' before it is complete"),
        ("x: &a 1\n" + "".join(f"y{i}: *a\n" for i in range(1001)) + GOOD_TAIL, r"more than 1000 aliases"),
    ],
    ids=["billion_laughs", "deep_nesting", "recursive_anchor", "too_many_aliases"],
)
def test_hostile_yaml_fails_fast_naming_the_file(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "hostile.yml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=match) as info:
        load(path)
    assert str(path) in str(info.value)


def test_an_oversized_policy_is_refused_before_it_is_parsed(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "huge.yml"
    path.write_text(GOOD_TAIL + "#" * 2048 + "\n")
    monkeypatch.setattr(policy_module, "MAX_POLICY_BYTES", 1024)
    with pytest.raises(PolicyError, match=r"huge.yml' is 2,\d+ bytes, more than the 1,024 a policy may have"):
        load(path)


def test_default_size_bound_is_far_above_a_real_policy() -> None:
    assert policy_module.MAX_POLICY_BYTES >= 8 * 1024 * 1024


def test_bad_utf8_names_the_file_and_the_place(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes(b"purposes:\n  - {name: ads, description: caf\xe9}\n")
    with pytest.raises(
        PolicyError, match=r"latin1.yml' is not UTF-8 text \(byte 42 on line 2\); save it as UTF-8"
    ):
        load(path)


def test_a_large_aliased_value_in_a_field_is_described_not_printed(tmp_path: Path) -> None:
    path = tmp_path / "aliased.yml"
    path.write_text(GOOD_TAIL.replace("Ads.", "&big [" + ", ".join(["lol"] * 500) + "]"))
    with pytest.raises(
        PolicyError, match=r"purposes\[0\]\.description: expected non-empty text, got a list"
    ) as info:
        load(path)
    assert len(str(info.value)) < 300


def test_version_must_be_a_short_scalar() -> None:
    with pytest.raises(PolicyError, match=r"version: expected a number or a short text, got a dict"):
        policy_module.parse({"version": {"a": 1}, **_good()})
    assert policy_module.parse({"version": 3, **_good()}).datasets


def _good() -> dict:
    return {
        "purposes": [{"name": "ads", "description": "Ads."}],
        "datasets": [
            {"name": "w", "source": "raw.w", "target": "ok.w", "subject_column": "c", "purpose": "ads"}
        ],
    }


def test_twenty_thousand_datasets_validate(tmp_path: Path) -> None:
    path = tmp_path / "big.yml"
    rows = [
        f"  - {{name: d{i}, source: raw.s{i}, target: ok.t{i}, subject_column: cid, purpose: ads}}"
        for i in range(20_000)
    ]
    path.write_text("purposes:\n  - {name: ads, description: Ads.}\ndatasets:\n" + "\n".join(rows) + "\n")
    assert len(load(path).datasets) == 20_000
    dup = path.read_text().replace("target: ok.t19999", "target: OK.T7")
    path.write_text(dup)
    with pytest.raises(PolicyError, match=r"datasets: two datasets have the same target 'ok.t7'"):
        load(path)


def test_run_records_a_policy_that_fails_to_load(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    duckdb.connect(str(db)).close()
    path = tmp_path / "broken.yml"
    path.write_bytes(b"purposes: [caf\xe9]\n")
    line = one_error_line(cg("run", "--policy", str(path), "--database", str(db), "--run-id", "r-bad-policy"))
    assert f"policy file '{path}' is not UTF-8 text" in line
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT status, error FROM consentgate_runs WHERE run_id = 'r-bad-policy'"
        ).fetchall()
    finally:
        con.close()
    assert rows == [("failed", line.removeprefix("consentgate: error: "))]


def test_run_with_a_bad_policy_and_no_database_creates_none(tmp_path: Path) -> None:
    db = tmp_path / "absent.duckdb"
    path = tmp_path / "broken.yml"
    path.write_text("purposes: []\ndatasets: []\n")
    line = one_error_line(cg("run", "--policy", str(path), "--database", str(db)))
    assert "purposes: expected a non-empty list" in line
    assert not db.exists()


# -- cut-offs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_as_of_outside_the_calendar_in_utc_is_a_one_line_error(tmp_path: Path, value: str) -> None:
    from consentgate.engine.enforcement import parse_as_of

    with pytest.raises(InvalidAsOfError, match=r"falls outside years 1-9999 once converted to UTC"):
        parse_as_of(value)
    db = tmp_path / "w.duckdb"
    duckdb.connect(str(db)).close()
    line = one_error_line(
        cg(
            "enforce",
            "--database",
            str(db),
            "--source",
            "s",
            "--target",
            "t",
            "--subject-column",
            "c",
            "--purpose",
            "ads",
            "--as-of",
            value,
        )
    )
    assert f"as-of {value!r} falls outside years 1-9999" in line


# -- database files --------------------------------------------------------------------------------


def _sqlite(path: Path) -> None:
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (a)")
    con.commit()
    con.close()


def _truncated(path: Path) -> None:
    good = path.with_suffix(".good")
    con = duckdb.connect(str(good))
    con.execute("CREATE TABLE t AS SELECT range AS a FROM range(1000)")
    con.close()
    path.write_bytes(good.read_bytes()[:6000])
    good.unlink()


NOT_DUCKDB = {
    "sqlite": (_sqlite, r"is a SQLite database, not DuckDB"),
    "random": (
        lambda p: p.write_bytes(os.urandom(5000)),
        r"is not a DuckDB database \(5000 bytes, no DuckDB header\)",
    ),
    "empty": (lambda p: p.write_bytes(b""), r"is not a DuckDB database \(0 bytes"),
    "truncated": (_truncated, r"is truncated \(6000 bytes, shorter than a DuckDB header\)"),
}


def _digest(path: Path) -> tuple[int, str]:
    return path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", sorted(NOT_DUCKDB))
@pytest.mark.parametrize("read_only", [False, True])
def test_a_file_that_is_not_duckdb_is_refused_and_left_untouched(
    tmp_path: Path, kind: str, read_only: bool
) -> None:
    make, match = NOT_DUCKDB[kind]
    path = tmp_path / "w.db"
    make(path)
    before = _digest(path)
    with pytest.raises(NotADatabaseError, match=match):
        open_duckdb(path, read_only=read_only)
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.db"]  # no .wal, nothing else written


@pytest.mark.parametrize("kind", sorted(NOT_DUCKDB))
def test_cli_refuses_a_file_that_is_not_duckdb_in_one_line(tmp_path: Path, kind: str) -> None:
    make, match = NOT_DUCKDB[kind]
    path = tmp_path / "w.db"
    make(path)
    before = _digest(path)
    for args in (
        [
            "enforce",
            "--database",
            str(path),
            "--source",
            "s",
            "--target",
            "t",
            "--subject-column",
            "c",
            "--purpose",
            "ads",
        ],
        ["lineage", "--database", str(path)],
    ):
        line = one_error_line(cg(*args))
        assert "download" not in line.lower() and "extension" not in line.lower()
        assert str(path) in line
    assert _digest(path) == before


def test_damaged_duckdb_file_is_a_one_line_error_and_not_modified(tmp_path: Path) -> None:
    good = tmp_path / "good.duckdb"
    con = duckdb.connect(str(good))
    con.execute("CREATE TABLE t AS SELECT range AS a, md5(range::VARCHAR) AS b FROM range(100000)")
    con.close()
    path = tmp_path / "cut.duckdb"
    path.write_bytes(good.read_bytes()[:20000])  # header intact, blocks missing
    before = _digest(path)
    line = one_error_line(cg("lineage", "--database", str(path)))
    assert "cut.duckdb" in line
    assert _digest(path) == before


def test_extensions_are_never_installed_or_loaded_automatically(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    session = open_duckdb(path, must_exist=False)
    try:
        settings = dict(
            session.all(
                "SELECT name, value FROM duckdb_settings() "
                "WHERE name IN ('autoinstall_known_extensions', 'autoload_known_extensions')"
            )
        )
    finally:
        session.close()
    assert settings == {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}


def test_policy_json_is_yaml_too(tmp_path: Path) -> None:
    # JSON policies (a YAML subset) load through the same bounded loader.
    path = tmp_path / "p.json"
    path.write_text(json.dumps(_good()))
    assert load(path).datasets[0].name == "w"
