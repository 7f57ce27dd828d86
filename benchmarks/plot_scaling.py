"""Plot how enforcement cost grows, from the JSON lines the benchmarks append (--results).

    python benchmarks/plot_scaling.py [--enforce benchmarks/results/enforce.jsonl]
                                      [--nightly benchmarks/results/nightly.jsonl] [--out docs]

Writes two PNGs:
  enforce_scaling.png     seconds against source rows (10M .. 1B) for the plain copy, the bare SQL of
                          the rule and consentgate (bench_enforce.py); an approach that ran out of
                          memory is drawn as a cross at the time it failed
  nightly_vs_changed.png  a nightly run's seconds against the fraction of subjects whose consent
                          changed since the last run (bench_purge.py --sweep): the incremental purge,
                          the full purge and a full consentgate enforcement of the same table
For each row count the latest record wins. Needs matplotlib (the project's `bench` extra).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABELS = {
    "ctas": "plain copy (CREATE TABLE AS SELECT *)",
    "bare_sql": "bare SQL of the rule, no evidence",
    "consentgate": "consentgate enforce (evidence, counts, lineage)",
    "consentgate_partitioned": "consentgate enforce --partitions auto",
}


def _records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_enforce(records: list[dict], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latest = {r["rows"]: r for r in records}  # later lines replace earlier ones
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for name, label in LABELS.items():
        ok = sorted(
            (rows, r["results"][name]["seconds"])
            for rows, r in latest.items()
            if name in r["results"] and "error" not in r["results"][name]
        )
        failed = sorted(
            (rows, r["results"][name]["seconds"])
            for rows, r in latest.items()
            if name in r["results"] and "error" in r["results"][name]
        )
        line = ax.plot([x for x, _ in ok], [y for _, y in ok], marker="o", label=label)[0]
        if failed:
            ax.scatter(
                [x for x, _ in failed],
                [y for _, y in failed],
                marker="x",
                s=80,
                color=line.get_color(),
                label=f"{name}: out of memory (time of failure)",
            )
    for rows, r in sorted(latest.items()):
        note = f"{r.get('memory_limit') or 'no limit'}"
        if r.get("partitions"):
            note += f", partitions {r['partitions']}"
        ax.annotate(
            note,
            (rows, r["results"]["ctas"]["seconds"]),
            textcoords="offset points",
            xytext=(4, -12),
            fontsize=7,
            color="grey",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("source rows (text keys; subjects = rows / 10, events = 3 x subjects)")
    ax.set_ylabel("seconds, end to end (median)")
    ax.set_title("Enforcement cost against table size (DuckDB, 2 cores)")
    fig.text(
        0.01,
        0.01,
        "wall clock of each run as recorded; see docs/performance.md for the machine's load",
        fontsize=7,
        color="grey",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "enforce_scaling.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_nightly(records: list[dict], out: Path) -> Path | None:
    sweeps = [r for r in records if r.get("kind") == "nightly_sweep"]
    if not sweeps:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = sweeps[-1]
    pts = sorted(sweep["points"], key=lambda p: p["fraction"])
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    xs = [p["fraction"] * 100 for p in pts]
    for key, label in (
        ("incremental_purge", "incremental purge (dbt purge_withdrawn, changed subjects only)"),
        ("full_purge", "full purge (every subject decided)"),
        ("enforce", "consentgate enforce: full replace with evidence"),
    ):
        ax.plot(xs, [p[key] for p in pts], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xlabel(f"subjects whose consent changed since the last run, % of {sweep['subjects']:,}")
    ax.set_ylabel("seconds (median)")
    ax.set_title(f"Nightly run against consent changes ({sweep['rows']:,} rows, text keys, DuckDB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "nightly_vs_changed.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(records: list[dict]) -> str:
    """The latest record per row count as a Markdown table (for docs/performance.md)."""
    lines = [
        "| rows | memory limit | approach | seconds | CPU s | peak RSS | peak temp | rows out |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for rows, r in sorted({r["rows"]: r for r in records}.items()):
        for name, x in r["results"].items():
            out = (
                f"{x['rows_out']:,}"
                if x.get("rows_out") is not None
                else f"failed: {x.get('error', '')[:60]}"
            )
            lines.append(
                f"| {rows:,} | {r.get('memory_limit') or '-'} | {name} | {x['seconds']:.1f} | "
                f"{x.get('cpu_seconds', 0):.1f} | {x['peak_rss_mb']:,.0f} MB | {x.get('peak_temp_mb', 0):,.0f} MB | {out} |"
            )
        ratios = ", ".join(f"{k} {v:.2f}" for k, v in r.get("ratios", {}).items())
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in r.get("cpu_ratios", {}).items())
        lines.append(f"| {rows:,} | | ratios (wall) | {ratios} | | | | |")
        if cpu:
            lines.append(f"| {rows:,} | | ratios (CPU) | {cpu} | | | | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--enforce", type=Path, default=HERE / "results" / "enforce.jsonl")
    ap.add_argument("--nightly", type=Path, default=HERE / "results" / "nightly.jsonl")
    ap.add_argument("--out", type=Path, default=HERE.parent / "docs")
    a = ap.parse_args()
    enforce = [r for r in _records(a.enforce) if "results" in r and "ctas" in r["results"]]
    if enforce:
        print(plot_enforce(enforce, a.out))
        print(markdown(enforce))
    nightly = plot_nightly(_records(a.nightly), a.out)
    if nightly:
        print(nightly)


if __name__ == "__main__":
    main()
