"""A policy file with its `sources:` section, until consentgate.policy carries `Policy.sources` itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import consentgate.policy as policy_module
from consentgate.errors import PolicyError
from consentgate.policy import Policy
from consentgate.sources.config import Source, parse_sources


def _document(p: Path) -> Any:
    """The YAML document, read under the policy loader's bounds (size, aliases, depth)."""
    import yaml

    text = policy_module._read_text(p)  # noqa: SLF001 - the same bounded reader as policy.load
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        policy_module._check_bounds(yaml, text, loader)  # noqa: SLF001
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except policy_module._LimitExceeded as exc:  # noqa: SLF001
        raise PolicyError(f"policy file {str(p)!r} {exc}; a policy cannot be this large") from None
    except yaml.YAMLError:
        raise PolicyError(f"policy file {str(p)!r} is not valid YAML") from None


def load(path: str | Path) -> tuple[Policy, tuple[Source, ...]]:
    """The validated policy and its validated sources (errors name the file and `sources[i].field`)."""
    p = Path(path)
    data = _document(p)
    if not isinstance(data, dict):
        return policy_module.parse(data, source=str(p)), ()
    raw = data.get("sources")
    wired = getattr(Policy, "__dataclass_fields__", {}).get("sources") is not None
    policy = policy_module.parse(data if wired else {k: v for k, v in data.items() if k != "sources"}, source=str(p))
    if wired:
        return policy, tuple(getattr(policy, "sources"))  # noqa: B009
    return policy, parse_sources(raw, {x.name for x in policy.purposes}, str(p))
