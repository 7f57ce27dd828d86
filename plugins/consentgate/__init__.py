"""consentgate: only rows of people who opted in reach ad targeting, and every run leaves evidence.

Importing the package is cheap: the engine (and DuckDB) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "enforce", "run_policy", "load_policy"]

if TYPE_CHECKING:
    from consentgate.engine.enforcement import enforce, run_policy
    from consentgate.engine.policy import load as load_policy


def __getattr__(name: str) -> Any:
    if name in ("enforce", "run_policy"):
        from consentgate.engine import enforcement as engine

        return getattr(engine, name)
    if name == "load_policy":
        from consentgate.engine.policy import load

        return load
    raise AttributeError(f"module 'consentgate' has no attribute {name!r}")
