"""The coverage check: ad-targeting dbt models reach personal data only through consented().

Rule: every model marked ad-targeting (config meta ``consentgate: {ad_targeting: true, purpose: ...}``,
or tag ``consentgate_ad_targeting`` with the purpose in meta ``consentgate.purpose`` or
``consentgate_purpose``) must reach every upstream node marked personal data (meta
``consentgate: {personal_data: true}`` on a source, seed, snapshot or model, or tag ``personal_data``)
only through a model that calls ``consentgate.consented()`` for the same purpose.

A model counts as calling consented() for a purpose when it depends (directly or through other
macros) on ``macro.consentgate.consented`` and either its compiled code carries the
``/* consentgate:consented {...} */`` comment with that purpose, or (a manifest from ``dbt parse``
has no compiled code) its raw code has a ``consented(...)`` call with that purpose as a string
literal (keyword ``purpose=`` or the third positional argument).

The same rule runs inside dbt as ``dbt run-operation check_coverage`` (dbt_project/macros/coverage/).
This module needs only the standard library and the rule's case folding; it never imports dbt.
"""

from __future__ import annotations

import json
import re
import sys
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consentgate.rule.semantics import fold_case

__all__ = ["Violation", "ad_targeting_models", "coverage_command", "find_violations", "gate_purposes"]

CONSENTED_MACRO = "macro.consentgate.consented"
AD_TARGETING_TAG = "consentgate_ad_targeting"
PERSONAL_DATA_TAG = "personal_data"

_COMMENT_RE = re.compile(r"/\* consentgate:consented (\{.*?\}) \*/")
# One macro argument: text without commas or parentheses, quoted strings, up to two levels of (...).
# Kept identical to dbt_project/macros/coverage/_coverage_gate_purposes.sql.
_ARG = r"""(?:[^,()'"]|'[^']*'|"[^"]*"|\((?:[^()'"]|'[^']*'|"[^"]*"|\((?:[^()'"]|'[^']*'|"[^"]*")*\))*\))+"""
_CALL_RE = re.compile(r"(?<![A-Za-z0-9_])consented\s*\(((?:" + _ARG + r")(?:,(?:" + _ARG + r"))*)\)")
_ARG_RE = re.compile(_ARG)
_KEYWORD_RE = re.compile(r"""(?:^|,)\s*purpose\s*=\s*(?:'([^']*)'|"([^"]*)")\s*(?:,|$)""")
_LITERAL_RE = re.compile(r"""^\s*(?:'([^']*)'|"([^"]*)")\s*$""")


@dataclass(frozen=True)
class Violation:
    """An ad-targeting model that reaches a personal-data node without passing consented().

    :param model: unique_id of the ad-targeting model
    :param purpose: the model's purpose (trimmed, lower-cased); None when it declares none
    :param path: unique_ids from the model upstream to the personal-data node (just the model when
        the violation is a missing purpose)
    :param reason: what is wrong, e.g. ``no consented() call``
    """

    model: str
    purpose: str | None
    path: tuple[str, ...]
    reason: str

    @property
    def personal_data_node(self) -> str | None:
        """The personal-data node reached, or None for a model without a purpose."""
        return self.path[-1] if len(self.path) > 1 else None

    def message(self) -> str:
        """One line, e.g. ``model.x.ad <- model.x.stg <- source.x.raw.t (personal data, purpose p): ...``."""
        if self.personal_data_node is None:
            return f"{self.model}: {self.reason}"
        return f"{' <- '.join(self.path)} (personal data, purpose {self.purpose}): {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "purpose": self.purpose,
            "path": list(self.path),
            "personal_data_node": self.personal_data_node,
            "reason": self.reason,
            "message": self.message(),
        }


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes"))


def _metas(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    config = node.get("config") or {}
    candidates = [config.get("meta"), node.get("meta"), node.get("source_meta")]
    return [meta for meta in candidates if isinstance(meta, Mapping)]


def _tags(node: Mapping[str, Any]) -> set[str]:
    config = node.get("config") or {}
    return {str(tag) for tag in [*(node.get("tags") or []), *(config.get("tags") or [])]}


def purpose_of(node: Mapping[str, Any]) -> str | None:
    """A node's declared purpose, trimmed and lower-cased; None when it declares none.

    Read from config meta `consentgate: {purpose: ...}`, else meta `consentgate_purpose`. The one
    definition, shared by the coverage check and `consentgate purposes`.
    """
    for meta in _metas(node):
        marks = meta.get("consentgate")
        if (
            isinstance(marks, Mapping)
            and isinstance(marks.get("purpose"), str)
            and marks["purpose"].strip(" ")
        ):
            return fold_case(marks["purpose"].strip(" "))
    for meta in _metas(node):
        value = meta.get("consentgate_purpose")
        if isinstance(value, str) and value.strip(" "):
            return fold_case(value.strip(" "))
    return None


def _marked(node: Mapping[str, Any], key: str, tag: str) -> bool:
    if tag in _tags(node):
        return True
    for meta in _metas(node):
        marks = meta.get("consentgate")
        if isinstance(marks, Mapping) and _truthy(marks.get(key)):
            return True
    return False


def is_ad_targeting(node: Mapping[str, Any]) -> bool:
    """True for a model marked ad-targeting."""
    return node.get("resource_type") == "model" and _marked(node, "ad_targeting", AD_TARGETING_TAG)


def is_personal_data(node: Mapping[str, Any]) -> bool:
    """True for any node (source, seed, snapshot, model) marked personal data."""
    return _marked(node, "personal_data", PERSONAL_DATA_TAG)


def _macro_closure(start: Iterable[str], macros: Mapping[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        macro_id = todo.pop()
        if macro_id in seen:
            continue
        seen.add(macro_id)
        macro = macros.get(macro_id) or {}
        todo.extend((macro.get("depends_on") or {}).get("macros") or [])
    return seen


def _raw_purposes(raw_code: str) -> list[str]:
    found: list[str] = []
    for match in _CALL_RE.finditer(raw_code):
        args = match.group(1)
        keyword = _KEYWORD_RE.search(args)
        if keyword:
            found.append(fold_case((keyword.group(1) or keyword.group(2) or "").strip(" ")))
            continue
        positional = _ARG_RE.findall(args)
        if len(positional) >= 3:
            literal = _LITERAL_RE.match(positional[2])
            if literal:
                found.append(fold_case((literal.group(1) or literal.group(2) or "").strip(" ")))
    return [purpose for purpose in found if purpose]


def gate_purposes(node: Mapping[str, Any], macros: Mapping[str, Any] | None = None) -> set[str]:
    """The purposes a node's SQL passes through consented() (empty when it does not call it)."""
    direct = (node.get("depends_on") or {}).get("macros") or []
    if CONSENTED_MACRO not in _macro_closure(direct, macros or {}):
        return set()
    purposes: set[str] = set()
    for payload in _COMMENT_RE.findall(node.get("compiled_code") or ""):
        try:
            call = json.loads(payload)
        except json.JSONDecodeError:
            continue
        if isinstance(call, Mapping) and isinstance(call.get("purpose"), str) and call["purpose"].strip(" "):
            purposes.add(fold_case(call["purpose"].strip(" ")))
    purposes.update(_raw_purposes(node.get("raw_code") or ""))
    return purposes


def ad_targeting_models(manifest: Mapping[str, Any]) -> list[str]:
    """unique_ids of the models marked ad-targeting, sorted."""
    nodes = manifest.get("nodes") or {}
    return sorted(uid for uid, node in nodes.items() if isinstance(node, Mapping) and is_ad_targeting(node))


def _reason(
    path: tuple[str, ...], purpose: str, graph: Mapping[str, Mapping[str, Any]], macros: Mapping[str, Any]
) -> str:
    """`no consented() call`, naming the other purposes a model on the path does call consented() for
    (a wrong purpose is the usual cause)."""
    others = []
    for uid in path:
        node = graph.get(uid) or {}
        if node.get("resource_type") == "model":
            found = sorted(gate_purposes(node, macros))
            if found:
                others.append(f"{uid} calls consented() for {', '.join(repr(p) for p in found)}")
    return "no consented() call" + (f" for {purpose!r} ({'; '.join(others)})" if others else "")


def _walk(
    start: str, purpose: str, graph: Mapping[str, Mapping[str, Any]], macros: Mapping[str, Any]
) -> list[Violation]:
    """Breadth-first upstream from start, stopping at models that gate purpose; shortest paths first."""
    violations: list[Violation] = []
    seen = {start}
    queue: deque[tuple[str, ...]] = deque([(start,)])
    while queue:
        path = queue.popleft()
        current = path[-1]
        node = graph.get(current) or {}
        if node.get("resource_type") == "model" and purpose in gate_purposes(node, macros):
            continue
        if current != start and is_personal_data(node):
            violations.append(Violation(start, purpose, path, _reason(path, purpose, graph, macros)))
        for parent in sorted((node.get("depends_on") or {}).get("nodes") or []):
            if parent not in seen:
                seen.add(parent)
                queue.append((*path, parent))
    return violations


def find_violations(manifest: dict) -> list[Violation]:
    """Every (ad-targeting model, personal-data node) pair connected by a path without consented()
    for the model's purpose, with one shortest such path each; plus ad-targeting models without a
    purpose. A pure function of the manifest dict (target/manifest.json)."""
    nodes: dict[str, Mapping[str, Any]] = {}
    for section in ("nodes", "sources"):
        for uid, node in (manifest.get(section) or {}).items():
            if isinstance(node, Mapping):
                nodes[uid] = node
    macros = manifest.get("macros") or {}
    violations: list[Violation] = []
    for uid in ad_targeting_models(manifest):
        purpose = purpose_of(nodes[uid])
        if purpose is None:
            violations.append(
                Violation(
                    uid,
                    None,
                    (uid,),
                    "ad-targeting model has no purpose (set config meta consentgate.purpose)",
                )
            )
            continue
        violations.extend(_walk(uid, purpose, nodes, macros))
    return violations


def _load_manifest(manifest_path: Path) -> dict:
    try:
        text = Path(manifest_path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(
            f"manifest not found: {manifest_path} (run `dbt parse` or `dbt compile` to write target/manifest.json)"
        ) from None
    except OSError as exc:
        raise ValueError(f"cannot read manifest {manifest_path}: {exc.strerror or exc}") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"manifest {manifest_path} is not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("nodes"), dict):
        raise ValueError(f"manifest {manifest_path} does not look like a dbt manifest (no 'nodes' mapping)")
    return manifest


def coverage_command(manifest_path: Path, as_json: bool) -> int:
    """`consentgate coverage --manifest PATH [--json]`: print each violation; exit code 1 when there
    are violations, 0 when there are none, 2 when the manifest is missing or invalid."""
    try:
        manifest = _load_manifest(manifest_path)
    except ValueError as exc:
        print(f"consentgate coverage: {exc}", file=sys.stderr)
        return 2
    violations = find_violations(manifest)
    checked = ad_targeting_models(manifest)
    if as_json:
        report = {
            "manifest": str(manifest_path),
            "models_checked": checked,
            "violations": [violation.to_dict() for violation in violations],
            "ok": not violations,
        }
        print(json.dumps(report, indent=2))
    else:
        for violation in violations:
            print(violation.message())
        print(
            f"consentgate coverage: {len(checked)} ad-targeting model(s) checked, "
            f"{len(violations)} violation(s)"
        )
    return 1 if violations else 0
