"""The dbt package and the engine write the same evidence tables: the columns and types of
`evidence_ddl` (dbt_project/macros/lineage/evidence_ddl.sql) and of the engine's ddl.sql, and the
columns added to tables of an older version (`evidence_added_columns` and lineage.ADDED_COLUMNS),
must agree, or a run recorded by one could not be read, verified or composed by the other."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from consentgate.engine import lineage

MACROS = Path(__file__).resolve().parents[2] / "dbt_project" / "macros" / "lineage"
_TABLE = re.compile(r"create\s+table\s+if\s+not\s+exists\s+([^(]+?)\s*\((.*?)\n\)", re.I | re.S)


def _columns(body: str) -> list[tuple[str, str]]:
    """(name, type) of each column line of a CREATE TABLE body (comments and NOT NULL dropped)."""
    out = []
    for line in body.splitlines():
        text = line.split("--", 1)[0].strip().rstrip(",")
        if text:
            name, sql_type = text.split()[:2]
            out.append((name.lower(), sql_type.lower()))
    return out


def engine_tables() -> dict[str, list[tuple[str, str]]]:
    ddl = resources.files("consentgate.engine").joinpath("ddl.sql").read_text(encoding="utf-8")
    return {name: _columns(body) for name, body in _TABLE.findall(ddl)}


def dbt_tables() -> dict[str, list[tuple[str, str]]]:
    text = (MACROS / "evidence_ddl.sql").read_text(encoding="utf-8")
    default = text[text.index("macro default__evidence_ddl") :]
    default = default[: default.index("{% endmacro %}")]
    kinds = re.findall(r"kind == '(\w+)'", default)
    bodies = [body for _name, body in _TABLE.findall(default)]
    assert len(kinds) == len(bodies) == 2, (kinds, len(bodies))
    return {
        lineage.RUNS if k == "runs" else lineage.LINEAGE: _columns(b)
        for k, b in zip(kinds, bodies, strict=True)
    }


def test_the_dbt_evidence_tables_have_the_engines_columns_and_types() -> None:
    engine = engine_tables()
    assert set(engine) == {lineage.RUNS, lineage.LINEAGE}
    assert dbt_tables() == engine


def test_the_columns_added_to_old_tables_agree() -> None:
    text = (MACROS / "evidence_added_columns.sql").read_text(encoding="utf-8")
    added = {
        kind: tuple(re.findall(r"\('(\w+)',\s*'(\w+)'\)", body))
        for kind, body in re.findall(r"'(\w+)':\s*\[(.*?)\]", text, re.S)
    }
    assert added == {
        "runs": lineage.ADDED_COLUMNS[lineage.RUNS],
        "lineage": lineage.ADDED_COLUMNS[lineage.LINEAGE],
    }


def test_every_added_column_is_in_the_tables() -> None:
    engine = engine_tables()
    for table, columns in lineage.ADDED_COLUMNS.items():
        assert set(columns) <= set(engine[table]), table
