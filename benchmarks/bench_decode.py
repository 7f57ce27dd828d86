"""Benchmark TC string decoding: consentgate against the official JS decoder and iab-tcf from PyPI.

    python benchmarks/bench_decode.py [--n 1000000] [--seed 1] [--repeat 3] [--strings FILE] [--json]

Produces --n TC strings with the official encoder (@iabtechlabtcf/core's SegmentEncoder, driven by
tests/signals/reference/ref.js, from a seeded, realistic mix of models: reject-all, accept-all with dense
vendor bitfields, partial choices, a few vendors in range encoding; a TCF 2.3 disclosed-vendors segment
on most; publisher restrictions on some), writes them to one file, then decodes the same strings, in one
run and on one core each, with:
  consentgate  consentgate.signals.tcf.decode (fields as lists, timestamps as ISO strings)
  official JS  TCString.decode of @iabtechlabtcf/core in Node 20
  iab-tcf      iab_tcf.decode of iab-tcf 0.2.2 (PyPI, last released 2022)
The three run in --repeat interleaved rounds, so that a busy moment of the machine hits them alike;
the best round of each is reported, with strings per second and the ratio to the official JS decoder.
It also counts how many of the must-fail strings of tests/signals/vectors.yaml each decoder accepts.
Not a test: nothing here asserts a time.

Setup: `npm ci --prefix tests/signals/reference` (the pinned reference packages) and, for the third
column only, `pip install iab-tcf==0.2.2` into the venv (it is not a dependency of consentgate; the
`bench` extra of pyproject.toml installs it). Without iab-tcf the column says "not installed".
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "signals" / "reference"


class Node:
    """One long-lived reference process (tests/signals/reference/ref.js), one JSON request a line."""

    def __init__(self) -> None:
        if not (REFERENCE / "node_modules" / "@iabtechlabtcf" / "core").is_dir():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(REFERENCE)], check=True)
        self.proc = subprocess.Popen(
            ["node", str(REFERENCE / "ref.js")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def call(self, op: str, **request: Any) -> Any:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"op": op, **request}) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            raise RuntimeError(f"reference {op}: {reply['error']}")
        return reply["ok"]

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def time_python(decode: Callable[[str], Any], strings: list[str]) -> tuple[float, int]:
    """Seconds to decode every string, and how many raised."""
    failed = 0
    start = time.perf_counter()
    for text in strings:
        try:
            decode(text)
        except Exception:  # noqa: BLE001 - a decoder's failure is counted, not fatal
            failed += 1
    return time.perf_counter() - start, failed


def iab_tcf_decoder() -> Callable[[str], Any] | None:
    try:
        import iab_tcf  # type: ignore[import-not-found]
    except ImportError:
        return None
    return iab_tcf.decode


def accepted_must_fail(decode: Callable[[str], Any]) -> tuple[int, int]:
    """How many must-fail TC strings of the known-answer file a decoder accepts."""
    import yaml

    vectors = yaml.safe_load((ROOT / "tests" / "signals" / "vectors.yaml").read_text())
    strings = [v["string"] for v in vectors["fails"] if v["kind"] == "tcf"]
    accepted = 0
    for text in strings:
        try:
            decode(text)
            accepted += 1
        except Exception:  # noqa: BLE001
            pass
    return accepted, len(strings)


def run(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "plugins"))
    from consentgate.signals import tcf

    node = Node()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(args.strings) if args.strings else Path(tmp) / "tc-strings.txt"
            if not args.strings:
                made = node.call("generate_tcf_file", n=args.n, seed=args.seed, path=str(path))
                print(f"encoded {made['n']:,} TC strings with the official encoder in {made['seconds']:.0f} s",
                      file=sys.stderr)  # fmt: skip
            strings = path.read_text().split()
            iab = iab_tcf_decoder()
            best: dict[str, float] = {}
            failures: dict[str, int] = {}
            for _ in range(args.repeat):
                seconds, failures["consentgate"] = time_python(tcf.decode, strings)
                best["consentgate"] = min(best.get("consentgate", seconds), seconds)
                js = node.call("bench_tcf_file", path=str(path))
                best["official JS"] = min(best.get("official JS", js["seconds"]), js["seconds"])
                failures["official JS"] = len(strings) - js["n"]
                if iab is not None:
                    seconds, failures["iab-tcf 0.2.2"] = time_python(iab, strings)
                    best["iab-tcf 0.2.2"] = min(best.get("iab-tcf 0.2.2", seconds), seconds)
    finally:
        node.close()
    rates = {name: len(strings) / seconds for name, seconds in best.items()}
    must_fail = {"consentgate": accepted_must_fail(tcf.decode)}
    if iab is not None:
        must_fail["iab-tcf 0.2.2"] = accepted_must_fail(iab)
    return {"strings": len(strings), "rates": rates, "failures": failures, "must_fail_accepted": must_fail}


def table(result: dict[str, Any]) -> str:
    js = result["rates"]["official JS"]
    lines = [
        f"{result['strings']:,} TC strings from the official encoder, one core each, best of the rounds",
        "",
        "| decoder | strings/s | vs official JS | strings it failed on |",
        "|---|---:|---:|---:|",
    ]
    for name in ("consentgate", "official JS", "iab-tcf 0.2.2"):
        if name not in result["rates"]:
            lines.append(f"| {name} | not installed | | |")
            continue
        rate = result["rates"][name]
        lines.append(f"| {name} | {rate:,.0f} | {rate / js:.2f}x | {result['failures'][name]:,} |")
    lines.append("")
    for name, (accepted, total) in result["must_fail_accepted"].items():
        lines.append(
            f"{name} accepts {accepted} of the {total} malformed TC strings of tests/signals/vectors.yaml"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="How many TC strings (default 1,000,000).")
    parser.add_argument("--seed", type=int, default=1, help="Seed of the model generator.")
    parser.add_argument("--repeat", type=int, default=3, help="Interleaved rounds (default 3).")
    parser.add_argument("--strings", help="Decode this file of TC strings (one a line) instead of encoding.")
    parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()
