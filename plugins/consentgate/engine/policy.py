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

from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from consentgate.engine.source_config import Source, parse_sources
from consentgate.errors import InvalidIdentifierError, PolicyError, shown
from consentgate.rule.names import TableName, column
from consentgate.rule.semantics import NORMALIZATIONS, ConsentColumns, fold_case


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
    :param sources: where the consent log comes from, for `consentgate ingest` (docs/sources.md)
    """

    consent_table: str
    columns: ConsentColumns
    purposes: tuple[Purpose, ...]
    datasets: tuple[Dataset, ...]
    path: str | None = None
    sources: tuple[Source, ...] = ()

    def purpose(self, name: str) -> Purpose:
        wanted = fold_case(name.strip(" "))
        return next(p for p in self.purposes if fold_case(p.name.strip(" ")) == wanted)

    def dataset(self, name: str) -> Dataset:
        for d in self.datasets:
            if d.name == name:
                return d
        raise PolicyError(
            f"policy has no dataset {name!r} (datasets: {', '.join(d.name for d in self.datasets)})"
        )


#: Bounds of the policy loader: a policy is configuration, kilobytes with a handful of anchors. Far
#: above any real policy (20,000 datasets take about 4 MB), far below what exhausts memory or time.
MAX_POLICY_BYTES = 16 * 1024 * 1024
MAX_ALIASES = 1000
MAX_DEPTH = 32
MAX_NODES = 2_000_000  # YAML nodes once every alias is expanded (the "billion laughs" bound)


class _LimitExceeded(Exception):
    """A policy file crossed one of the loader's bounds."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.line = mark.line + 1 if mark is not None else None


class _Bounds:
    """Counts, from the parser's events, aliases, nesting and the values each node expands to."""

    def __init__(self) -> None:
        self.aliases = 0
        self.anchors: dict[str, int] = {}
        self.stack: list[list[Any]] = []  # [expanded weight so far, anchor] per open collection

    def alias(self, event: Any) -> int:
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            raise _LimitExceeded(f"uses more than {MAX_ALIASES} aliases (*name)", event.start_mark)
        if event.anchor not in self.anchors:
            raise _LimitExceeded(f"refers to anchor {event.anchor!r} before it is complete", event.start_mark)
        return self.anchors[event.anchor]

    def start(self, event: Any) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise _LimitExceeded(f"nests deeper than {MAX_DEPTH} levels", event.start_mark)
        self.stack.append([1, event.anchor])

    def end(self) -> int:
        weight, anchor = self.stack.pop()
        if anchor:
            self.anchors[anchor] = weight
        return int(weight)

    def add(self, weight: int, event: Any) -> None:
        if self.stack:
            self.stack[-1][0] += weight
            if self.stack[-1][0] > MAX_NODES:
                raise _LimitExceeded(
                    f"expands to more than {MAX_NODES:,} values once its aliases are resolved",
                    event.start_mark,
                )


def _check_bounds(yaml: Any, text: str, loader: Any) -> None:
    """Walk the YAML events (libyaml's parser when available) before any value is built."""
    bounds = _Bounds()
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            bounds.start(event)
        elif isinstance(event, yaml.AliasEvent):
            bounds.add(bounds.alias(event), event)
        elif isinstance(event, yaml.CollectionEndEvent):
            bounds.add(bounds.end(), event)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                bounds.anchors[event.anchor] = 1
            bounds.add(1, event)


def _read_text(p: Path) -> str:
    try:
        size = p.stat().st_size
        if size > MAX_POLICY_BYTES:
            raise PolicyError(
                f"policy file {str(p)!r} is {size:,} bytes, more than the {MAX_POLICY_BYTES:,} a policy may have"
            )
        raw = p.read_bytes()
    except OSError as exc:
        raise PolicyError(f"policy file {str(p)!r} cannot be read: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PolicyError(
            f"policy file {str(p)!r} is not UTF-8 text (byte {exc.start} on line {line}); save it as UTF-8"
        ) from None


def load(path: str | Path) -> Policy:
    """Read and validate a policy file. Every error names the file and the field.

    Bounded: at most MAX_POLICY_BYTES, MAX_ALIASES aliases, MAX_DEPTH levels and MAX_NODES values
    with aliases expanded, checked on the parser's events before any value is built, so a hostile
    file fails fast instead of exhausting memory.
    """
    import yaml

    p = Path(path)
    text = _read_text(p)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _check_bounds(yaml, text, loader)
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader (libyaml's when available)
    except _LimitExceeded as exc:
        where = f" at line {exc.line}" if exc.line else ""
        raise PolicyError(f"policy file {str(p)!r} {exc}{where}; a policy cannot be this large") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise PolicyError(f"policy file {str(p)!r} is not valid YAML{where}") from None
    return parse(data, source=str(p))


class _Reader:
    """Validates one policy document; every error names the source and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, problem: str) -> PolicyError:
        return PolicyError(f"{self.source}: {field}: {problem}")

    def mapping(self, value: Any, field: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, f"expected a mapping, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(f"{field}.{unknown[0]}", f"unknown field (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required):
            if value.get(key) in (None, ""):
                raise self.fail(f"{field}.{key}", "required")
        return value

    def purpose(self, value: Any, field: str) -> str:
        """A purpose name: trimmed of spaces only, as the rule trims purposes (docs/semantics.md, rule 3)."""
        if not isinstance(value, str) or not value.strip(" "):
            raise self.fail(field, f"expected non-empty text, got {shown(value)}")
        return value.strip(" ")

    def text(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, f"expected non-empty text, got {shown(value)}")
        return value.strip()

    def name(self, fn: Any, value: Any, field: str) -> Any:
        if not isinstance(value, str):
            raise self.fail(field, f"expected a name, got {shown(value)}")
        try:
            return fn(value)
        except InvalidIdentifierError as exc:
            raise self.fail(field, str(exc)) from None

    def items(self, value: Any, field: str) -> list[Any]:
        if not isinstance(value, list) or not value:
            raise self.fail(field, "expected a non-empty list")
        return value

    def unique(self, values: list[str], field: str, what: str) -> None:
        counts = Counter(fold_case(v) for v in values)  # linear: a policy may list thousands of datasets
        dupes = sorted(v for v, n in counts.items() if n > 1)
        if dupes:
            raise self.fail(field, f"{what} {dupes[0]!r}")

    def consent(self, raw: Any) -> tuple[str, ConsentColumns]:
        consent = self.mapping(raw or {}, "consent", {"table", "columns"}, set())
        table = self.text(consent.get("table", "consent_events"), "consent.table")
        self.name(TableName.parse, table, "consent.table")
        return table, self.columns(consent.get("columns") or {}, "consent.columns")

    def columns(self, raw: Any, field: str) -> ConsentColumns:
        allowed = {f.name for f in fields(ConsentColumns)}
        cols = self.mapping(raw, field, allowed, set())
        for key, value in cols.items():
            if value is None and key in ConsentColumns.REQUIRED:
                raise self.fail(f"{field}.{key}", "required column cannot be mapped to null")
            if value is not None:
                self.name(column, value, f"{field}.{key}")
        return ConsentColumns(**cols)

    def purposes(self, raw: Any) -> list[Purpose]:
        out = []
        for i, item in enumerate(self.items(raw, "purposes")):
            f = f"purposes[{i}]"
            item = self.mapping(item, f, {"name", "description"}, {"name", "description"})
            out.append(
                Purpose(
                    self.purpose(item["name"], f"{f}.name"),
                    self.text(item["description"], f"{f}.description"),
                )
            )
        self.unique([p.name for p in out], "purposes", "purpose declared twice:")
        return out

    def dataset(self, raw: Any, i: int, purposes: set[str]) -> Dataset:
        f = f"datasets[{i}]"
        allowed = {"name", "source", "target", "subject_column", "purpose", "normalize"}
        item = self.mapping(raw, f, allowed, allowed - {"normalize"})
        texts = {k: self.text(item[k], f"{f}.{k}") for k in sorted(allowed - {"normalize", "purpose"})}
        ds = Dataset(
            **texts, purpose=self.purpose(item["purpose"], f"{f}.purpose"), normalize=item.get("normalize")
        )
        self.name(TableName.parse, ds.source, f"{f}.source")
        self.name(TableName.parse, ds.target, f"{f}.target")
        self.name(column, ds.subject_column, f"{f}.subject_column")
        if ds.normalize is not None and ds.normalize not in NORMALIZATIONS:
            raise self.fail(
                f"{f}.normalize", f"unknown normalisation {shown(ds.normalize)} (allowed: lower or null)"
            )
        if fold_case(ds.purpose) not in purposes:
            raise self.fail(f"{f}.purpose", f"purpose {ds.purpose!r} is not declared under purposes")
        return ds


def parse_columns(mapping: Any, source: str = "consent_columns") -> ConsentColumns:
    """Validate a consent column mapping given outside a policy file (an operator argument)."""
    return _Reader(source).columns(mapping, "columns")


def parse(data: Any, source: str = "policy") -> Policy:
    """Validate a policy document (already parsed from YAML)."""
    r = _Reader(source)
    top = r.mapping(
        data, "policy", {"version", "consent", "purposes", "datasets", "sources"}, {"purposes", "datasets"}
    )
    version = top.get("version")
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int | str) or len(str(version)) > 60
    ):
        raise r.fail("version", f"expected a number or a short text, got {shown(version)}")
    table, columns = r.consent(top.get("consent"))
    purposes = r.purposes(top["purposes"])
    declared = {fold_case(p.name) for p in purposes}
    datasets = [r.dataset(item, i, declared) for i, item in enumerate(r.items(top["datasets"], "datasets"))]
    r.unique([d.name for d in datasets], "datasets", "two datasets have the same name")
    r.unique([d.target for d in datasets], "datasets", "two datasets have the same target")
    sources = parse_sources(top.get("sources"), {p.name for p in purposes}, source)
    return Policy(table, columns, tuple(purposes), tuple(datasets), path=source, sources=sources)
