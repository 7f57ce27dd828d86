"""A policy's `sources:` section: where consent comes from and how it maps onto the policy's purposes.

```yaml
sources:
  - name: web_gpc                    # unique; names the source in the log's `source` column and evidence
    kind: gpc                        # events | gpc | usprivacy | fides | segment | onetrust | consent_mode | tcf | gpp
    table: raw.web_requests          # or a view
    columns:                         # logical name -> the table's column (kinds have defaults)
      subject: customer_id           # who chose (required)
      signal: sec_gpc                # the signal (gpc, usprivacy, tcf, gpp, segment, onetrust cookie)
      event_ts: requested_at         # when the person chose (a timestamp)
      recorded_at: loaded_at         # optional: when the row arrived; the watermark column
      id: request_id                 # optional: the row's own identity
    purposes: [ad_targeting]         # the source's vocabulary -> the policy's purposes (per kind)
```

Every error is one line naming `sources[i].field`, the value received (never a row value) and what
to do. docs/sources.md documents every kind's columns and vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from consentgate.errors import InvalidIdentifierError, PolicyError, shown
from consentgate.rule.names import TableName, column
from consentgate.rule.semantics import fold_case
from consentgate.signals.usable import US_OPT_OUT_FIELDS


class Kind(StrEnum):
    """What a source holds, and so how its rows become consent events."""

    EVENTS = "events"
    GPC = "gpc"
    USPRIVACY = "usprivacy"
    FIDES = "fides"
    SEGMENT = "segment"
    ONETRUST = "onetrust"
    CONSENT_MODE = "consent_mode"
    TCF = "tcf"
    GPP = "gpp"


#: Google Consent Mode v2 consent types.
CONSENT_TYPES = (
    "ad_storage", "ad_user_data", "ad_personalization", "analytics_storage",
    "functionality_storage", "personalization_storage", "security_storage",
)  # fmt: skip
ONETRUST_FORMATS = ("cookie", "receipts")
_BASE = {"subject": None, "event_ts": None, "recorded_at": None, "id": None}
#: kind -> {logical column: default actual name (None: no default)}; `required` below.
_COLUMNS: dict[Kind, dict[str, str | None]] = {
    Kind.EVENTS: {
        "subject": "subject_id", "purpose": "purpose", "status": "status", "event_ts": "event_ts",
        "recorded_at": "recorded_at", "expires_at": "expires_at", "policy_version": "policy_version", "id": None,
    },
    Kind.FIDES: {
        **_BASE, "event_ts": "created_at", "id": "id", "preference": "preference", "notice_key": "notice_key",
        "method": "method",
    },
    Kind.CONSENT_MODE: {**_BASE, **{t: None for t in CONSENT_TYPES}},
    **{k: {**_BASE, "signal": None} for k in (Kind.GPC, Kind.USPRIVACY, Kind.SEGMENT, Kind.TCF, Kind.GPP)},
}  # fmt: skip
_REQUIRED: dict[Kind, tuple[str, ...]] = {
    Kind.EVENTS: ("subject", "purpose", "status", "event_ts"),
    Kind.FIDES: ("subject", "event_ts", "preference", "notice_key"),
    Kind.CONSENT_MODE: ("subject", "event_ts"),
}
#: Default columns that may be absent from the table (then read as null).
OPTIONAL_DEFAULTS = {"recorded_at", "expires_at", "policy_version", "method", "id"}


@dataclass(frozen=True)
class TcfRule:
    """When a TC string (or a GPP string's tcfeuv2 section) grants one policy purpose.

    :param purpose: the policy purpose
    :param tcf_purposes: TCF purposes that must all have consent (legitimate interest never counts)
    :param special_features: TCF special features that must all be opted in
    :param vendors: GVL vendor ids (the destinations of the data) that must all have consent and not
        be restricted by a publisher restriction for any of those purposes
    :param us_opt_outs: GPP only: US-section opt-out fields whose value 1 withdraws the purpose
    :param gpc: GPP only: a GPC sub-section with Gpc true withdraws the purpose
    """

    purpose: str
    tcf_purposes: tuple[int, ...] = ()
    special_features: tuple[int, ...] = ()
    vendors: tuple[int, ...] = ()
    us_opt_outs: tuple[str, ...] = ()
    gpc: bool = False


@dataclass(frozen=True)
class Source:
    """One declared consent source.

    :param name: unique name, written to the log's `source` column and to the evidence
    :param kind: what the source holds (Kind)
    :param table: the table or view read (`table` or `schema.table`)
    :param columns: (logical column, actual column) pairs, defaults filled in
    :param vocabulary: (source value, policy purposes) pairs: notice keys, categories, groups,
        consent types, event purposes; for gpc and usprivacy one pair ("*", purposes withdrawn)
    :param rules: tcf and gpp: one rule per policy purpose
    :param format: onetrust only: `cookie` (OptanonConsent groups) or `receipts` (purpose statuses)
    """

    name: str
    kind: Kind
    table: str
    columns: tuple[tuple[str, str], ...]
    vocabulary: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rules: tuple[TcfRule, ...] = ()
    format: str | None = None

    def column(self, logical: str) -> str | None:
        return dict(self.columns).get(logical)

    @property
    def watermark_columns(self) -> tuple[str, ...]:
        """The columns whose coalesce orders arrival: recorded_at if mapped, then event_ts."""
        rec, ev = self.column("recorded_at"), self.column("event_ts")
        return tuple(c for c in (rec, ev) if c)

    def purposes_for(self, value: str) -> tuple[str, ...]:
        return dict(self.vocabulary).get(value, ())

    @property
    def keeps_history(self) -> bool:
        """Each row is a choice a person made (events, Fides, OneTrust receipts): every new one is
        written. Otherwise the rows are signals repeated on every request or page view: only the
        latest observation is written, and only when it changes the decision."""
        return self.kind in (Kind.EVENTS, Kind.FIDES) or self.format == "receipts"

    @property
    def purposes(self) -> tuple[str, ...]:
        """Every policy purpose this source can write events for."""
        out = [p for _, ps in self.vocabulary for p in ps] + [r.purpose for r in self.rules]
        return tuple(dict.fromkeys(out))


class _Reader:
    def __init__(self, where: str, purposes: set[str]) -> None:
        self.where = where
        self.declared = {fold_case(p.strip(" ")): p.strip(" ") for p in purposes}

    def fail(self, field: str, problem: str) -> PolicyError:
        return PolicyError(f"{self.where}: {field}: {problem}")

    def mapping(self, value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict) or not value:
            raise self.fail(field, f"expected a non-empty mapping, got {shown(value)}")
        for key in value:
            if not isinstance(key, str) or not key.strip():
                raise self.fail(field, f"keys must be non-empty text, got {shown(key)}")
        return value

    def purpose(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or fold_case(value.strip(" ")) not in self.declared:
            allowed = ", ".join(sorted(self.declared.values()))
            raise self.fail(
                field, f"purpose {shown(value)} is not declared under purposes (declared: {allowed})"
            )
        return self.declared[fold_case(value.strip(" "))]

    def purposes(self, value: Any, field: str) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise self.fail(field, "expected a purpose or a non-empty list of purposes")
        return tuple(dict.fromkeys(self.purpose(v, f"{field}[{i}]") for i, v in enumerate(items)))

    def ints(self, value: Any, field: str, low: int, high: int) -> tuple[int, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or any(
            isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high for v in value
        ):
            raise self.fail(field, f"expected a list of whole numbers {low}-{high}, got {shown(value)}")
        return tuple(sorted(set(value)))

    def text(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, f"expected non-empty text, got {shown(value)}")
        return value.strip()


def _columns(
    r: _Reader, kind: Kind, raw: Any, field: str, vocabulary: tuple[tuple[str, tuple[str, ...]], ...]
) -> tuple[tuple[str, str], ...]:
    spec = dict(_COLUMNS.get(kind, {}))
    if kind is Kind.ONETRUST:
        spec = (
            {**_BASE, "signal": None}
            if raw is None or "signal" in (raw or {})
            else {**_BASE, "purpose": None, "status": None}
        )
    given = {} if raw is None else r.mapping(raw, field)
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise r.fail(
            f"{field}.{unknown[0]}", f"unknown column for kind {kind.value} (allowed: {', '.join(spec)})"
        )
    out: dict[str, str] = {}
    for logical, default in spec.items():
        actual = given.get(logical, default)
        if (
            kind is Kind.CONSENT_MODE
            and logical in CONSENT_TYPES
            and any(v == logical for v, _ in vocabulary)
        ):
            actual = given.get(logical, logical)
        if actual is None:
            continue
        try:
            out[logical] = column(actual, f"{field}.{logical}")
        except InvalidIdentifierError as exc:
            raise r.fail(f"{field}.{logical}", str(exc)) from None
    required = _REQUIRED.get(kind, ("subject", "event_ts", "signal" if "signal" in spec else "purpose"))
    for logical in required:
        if logical not in out:
            raise r.fail(
                f"{field}.{logical}", f"required for kind {kind.value}: name the column that holds it"
            )
    if kind is Kind.ONETRUST and "status" in spec and "status" not in out:
        raise r.fail(f"{field}.status", "required for OneTrust receipts: name the purpose status column")
    return tuple(out.items())


def _vocabulary(r: _Reader, kind: Kind, raw: Any, field: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if kind in (Kind.GPC, Kind.USPRIVACY):
        return (("*", r.purposes(raw, field)),)
    if kind is Kind.EVENTS and raw is None:
        return tuple((k, (v,)) for k, v in sorted(r.declared.items()))
    vocab = r.mapping(raw, field)
    if kind is Kind.CONSENT_MODE:
        for key in vocab:
            if key not in CONSENT_TYPES:
                raise r.fail(
                    f"{field}.{key}",
                    f"not a Consent Mode v2 consent type (one of: {', '.join(CONSENT_TYPES)})",
                )
    if kind is Kind.EVENTS:  # event purposes are matched as the rule matches them
        return tuple((fold_case(k.strip(" ")), r.purposes(v, f"{field}.{k}")) for k, v in vocab.items())
    return tuple((k.strip(), r.purposes(v, f"{field}.{k}")) for k, v in vocab.items())


def _rules(r: _Reader, kind: Kind, raw: Any, field: str) -> tuple[TcfRule, ...]:
    rules = []
    allowed = {"tcf_purposes", "special_features", "vendors"} | (
        {"us_opt_outs", "gpc"} if kind is Kind.GPP else set()
    )
    for key, spec in r.mapping(raw, field).items():
        f = f"{field}.{key}"
        spec = r.mapping(spec, f)
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise r.fail(f"{f}.{unknown[0]}", f"unknown field (allowed: {', '.join(sorted(allowed))})")
        outs = spec.get("us_opt_outs") or []
        if not isinstance(outs, list) or any(o not in US_OPT_OUT_FIELDS for o in outs):
            raise r.fail(
                f"{f}.us_opt_outs", f"expected a list of {', '.join(US_OPT_OUT_FIELDS)}, got {shown(outs)}"
            )
        gpc = spec.get("gpc", False)
        if not isinstance(gpc, bool):
            raise r.fail(f"{f}.gpc", f"expected true or false, got {shown(gpc)}")
        rule = TcfRule(
            purpose=r.purpose(key, f),
            tcf_purposes=r.ints(spec.get("tcf_purposes"), f"{f}.tcf_purposes", 1, 24),
            special_features=r.ints(spec.get("special_features"), f"{f}.special_features", 1, 12),
            vendors=r.ints(spec.get("vendors"), f"{f}.vendors", 1, 65535),
            us_opt_outs=tuple(dict.fromkeys(outs)),
            gpc=gpc,
        )
        if kind is Kind.TCF and not rule.tcf_purposes:
            raise r.fail(f"{f}.tcf_purposes", "required: the TCF purposes (1-24) that must all have consent")
        if not (rule.tcf_purposes or rule.us_opt_outs or rule.gpc):
            raise r.fail(f, "maps nothing: give tcf_purposes, us_opt_outs or gpc: true")
        rules.append(rule)
    return tuple(rules)


_ALLOWED_KEYS = {"name", "kind", "table", "columns", "purposes", "format"}


def _source(r: _Reader, raw: Any, i: int) -> Source:
    f = f"sources[{i}]"
    item = r.mapping(raw, f)
    unknown = sorted(set(item) - _ALLOWED_KEYS)
    if unknown:
        raise r.fail(f"{f}.{unknown[0]}", f"unknown field (allowed: {', '.join(sorted(_ALLOWED_KEYS))})")
    name = r.text(item.get("name"), f"{f}.name")
    try:
        column(name, f"{f}.name")
    except InvalidIdentifierError:
        raise r.fail(
            f"{f}.name", f"source name {shown(name)} must be letters, digits and underscores"
        ) from None
    kinds = ", ".join(k.value for k in Kind)
    try:
        kind = Kind(str(item["kind"])) if isinstance(item.get("kind"), str) else Kind("")
    except ValueError:
        raise r.fail(f"{f}.kind", f"unknown kind {shown(item.get('kind'))} (one of: {kinds})") from None
    table = r.text(item.get("table"), f"{f}.table")
    try:
        TableName.parse(table, "source table")
    except InvalidIdentifierError as exc:
        raise r.fail(f"{f}.table", str(exc)) from None
    fmt = item.get("format")
    if fmt is not None and (kind is not Kind.ONETRUST or fmt not in ONETRUST_FORMATS):
        raise r.fail(f"{f}.format", f"{shown(fmt)}: only kind onetrust has a format (cookie or receipts)")
    rules: tuple[TcfRule, ...] = ()
    vocabulary: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if kind in (Kind.TCF, Kind.GPP):
        rules = _rules(r, kind, item.get("purposes"), f"{f}.purposes")
    else:
        vocabulary = _vocabulary(r, kind, item.get("purposes"), f"{f}.purposes")
    raw_columns = item.get("columns")
    if kind is Kind.ONETRUST:
        fmt = fmt or "cookie"
        raw_columns = dict(raw_columns or {})
        if fmt == "receipts" and "signal" in raw_columns:
            raise r.fail(
                f"{f}.columns.signal", "OneTrust receipts have purpose and status columns, not a signal"
            )
        if fmt == "cookie" and "signal" not in raw_columns:
            raise r.fail(
                f"{f}.columns.signal", "required for kind onetrust: the OptanonConsent (groups) column"
            )
    cols = _columns(r, kind, raw_columns, f"{f}.columns", vocabulary)
    return Source(name, kind, table, cols, vocabulary, rules, fmt)


def parse_sources(raw: Any, purposes: set[str], where: str = "policy") -> tuple[Source, ...]:
    """Validate a policy's `sources:` list against its declared `purposes` (names, any case).

    `where` names the policy file in errors. None (no section) gives no sources.
    """
    if raw is None:
        return ()
    r = _Reader(where, purposes)
    if not isinstance(raw, list):
        raise r.fail("sources", f"expected a list of sources, got {shown(raw)}")
    out = [_source(r, item, i) for i, item in enumerate(raw)]
    seen: dict[str, int] = {}
    for i, s in enumerate(out):
        if s.name.lower() in seen:
            raise r.fail(
                f"sources[{i}].name",
                f"source {s.name!r} is declared twice (also sources[{seen[s.name.lower()]}])",
            )
        seen[s.name.lower()] = i
    return tuple(out)


def source_named(sources: tuple[Source, ...], name: str) -> Source:
    for s in sources:
        if s.name.lower() == name.strip().lower():
            return s
    names = ", ".join(s.name for s in sources) or "none"
    raise PolicyError(f"policy has no source {name!r} (sources: {names})")


def read_sources_section(data: Mapping[str, Any], where: str) -> tuple[Source, ...]:
    """The sources of an already-parsed policy document (until policy.py carries them itself)."""
    declared = {str(p.get("name")) for p in data.get("purposes") or [] if isinstance(p, dict)}
    return parse_sources(data.get("sources"), declared, where)
