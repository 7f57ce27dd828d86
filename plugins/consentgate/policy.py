"""The policy file: where consent lives, what each purpose means, which datasets are enforced.

```yaml
consent:
  table: consent_events            # or schema.table
  columns: {subject_id: customer_ref}   # only what differs from the defaults
purposes:
  - name: ad_targeting
    description: Show you ads based on what you browse and buy.
datasets:
  - name: web_events
    source: raw.web_events
    target: consented.web_events
    subject_column: customer_id
    purpose: ad_targeting
    normalize: null                # or lower
```
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from consentgate.errors import InvalidIdentifierError, PolicyError
from consentgate.names import TableName, column
from consentgate.semantics import NORMALIZATIONS, ConsentColumns


@dataclass(frozen=True)
class Purpose:
    """A purpose people can opt in to.

    :param name: the purpose as written in the consent log (matched case-insensitively)
    :param description: plain language, fit to show next to an opt-in box
    """

    name: str
    description: str


@dataclass(frozen=True)
class Dataset:
    """One marketing dataset to enforce.

    :param name: unique name, used in lineage
    :param source: table read (`table` or `schema.table`)
    :param target: table replaced by the consented rows
    :param subject_column: the source column holding the subject key
    :param purpose: the purpose a subject must have granted
    :param normalize: None, or `lower` to compare keys lower-cased (e-mail addresses)
    """

    name: str
    source: str
    target: str
    subject_column: str
    purpose: str
    normalize: str | None = None


@dataclass(frozen=True)
class Policy:
    """A validated policy file.

    :param consent_table: the consent log
    :param columns: its column mapping
    :param purposes: every purpose, with its description
    :param datasets: every dataset to enforce
    :param path: where it was read from
    """

    consent_table: str
    columns: ConsentColumns
    purposes: tuple[Purpose, ...]
    datasets: tuple[Dataset, ...]
    path: str | None = None

    def purpose(self, name: str) -> Purpose:
        wanted = name.strip().lower()
        return next(p for p in self.purposes if p.name.strip().lower() == wanted)

    def dataset(self, name: str) -> Dataset:
        for d in self.datasets:
            if d.name == name:
                return d
        raise PolicyError(f"policy has no dataset {name!r} (datasets: {', '.join(d.name for d in self.datasets)})")


def load(path: str | Path) -> Policy:
    """Read and validate a policy file. Every error names the file and the field."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise PolicyError(f"policy file {str(p)!r} cannot be read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise PolicyError(f"policy file {str(p)!r} is not valid YAML{where}") from None
    return parse(data, source=str(p))


def parse(data: Any, source: str = "policy") -> Policy:
    def fail(field: str, problem: str) -> PolicyError:
        return PolicyError(f"{source}: {field}: {problem}")

    def mapping(value: Any, field: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise fail(field, f"expected a mapping, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise fail(f"{field}.{unknown[0]}", f"unknown field (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required):
            if value.get(key) in (None, ""):
                raise fail(f"{field}.{key}", "required")
        return value

    def text(value: Any, field: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise fail(field, f"expected non-empty text, got {value!r}")
        return value.strip()

    def checked(fn: Any, value: Any, field: str) -> Any:
        try:
            return fn(value)
        except InvalidIdentifierError as exc:
            raise fail(field, str(exc)) from None

    top = mapping(data, "policy", {"version", "consent", "purposes", "datasets"}, {"purposes", "datasets"})
    consent = mapping(top.get("consent") or {}, "consent", {"table", "columns"}, set())
    table = text(consent.get("table", "consent_events"), "consent.table")
    checked(TableName.parse, table, "consent.table")
    col_names = {f.name for f in fields(ConsentColumns)}
    raw_cols = mapping(consent.get("columns") or {}, "consent.columns", col_names, set())
    for key, value in raw_cols.items():
        if value is None and key in ConsentColumns.REQUIRED:
            raise fail(f"consent.columns.{key}", "required column cannot be mapped to null")
        if value is not None:
            checked(column, value, f"consent.columns.{key}")
    columns = ConsentColumns(**raw_cols)

    if not isinstance(top["purposes"], list) or not top["purposes"]:
        raise fail("purposes", "expected a non-empty list")
    purposes: list[Purpose] = []
    for i, raw in enumerate(top["purposes"]):
        f = f"purposes[{i}]"
        item = mapping(raw, f, {"name", "description"}, {"name", "description"})
        purposes.append(Purpose(text(item["name"], f"{f}.name"), text(item["description"], f"{f}.description")))
    names = [p.name.lower() for p in purposes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise fail("purposes", f"purpose {dupes[0]!r} is declared twice")

    if not isinstance(top["datasets"], list) or not top["datasets"]:
        raise fail("datasets", "expected a non-empty list")
    datasets: list[Dataset] = []
    allowed = {"name", "source", "target", "subject_column", "purpose", "normalize"}
    for i, raw in enumerate(top["datasets"]):
        f = f"datasets[{i}]"
        item = mapping(raw, f, allowed, allowed - {"normalize"})
        ds = Dataset(
            name=text(item["name"], f"{f}.name"),
            source=text(item["source"], f"{f}.source"),
            target=text(item["target"], f"{f}.target"),
            subject_column=text(item["subject_column"], f"{f}.subject_column"),
            purpose=text(item["purpose"], f"{f}.purpose"),
            normalize=item.get("normalize"),
        )
        checked(TableName.parse, ds.source, f"{f}.source")
        checked(TableName.parse, ds.target, f"{f}.target")
        checked(column, ds.subject_column, f"{f}.subject_column")
        if ds.normalize is not None and ds.normalize not in NORMALIZATIONS:
            raise fail(f"{f}.normalize", f"unknown normalisation {ds.normalize!r} (allowed: lower or null)")
        if ds.purpose.lower() not in names:
            raise fail(f"{f}.purpose", f"purpose {ds.purpose!r} is not declared under purposes")
        datasets.append(ds)
    for attr in ("name", "target"):
        values = [getattr(d, attr).lower() for d in datasets]
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise fail("datasets", f"two datasets have the same {attr} {dupes[0]!r}")
    return Policy(table, columns, tuple(purposes), tuple(datasets), path=source)
