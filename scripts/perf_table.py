#!/usr/bin/env python3
"""Turns the JSON lines of Loom's workload benchmarks into the README's Markdown table.

    cargo bench -p loomflow --bench workloads -- --json > results.jsonl
    python3 scripts/perf_table.py results.jsonl      # or: ... | python3 scripts/perf_table.py

Given several runs (append them to one file, or pass several files), each line shows the run
with the median figure, so one noisy process does not make the table.

Each row sets Loom's figure next to the Python frameworks' figures for the same workload, and
the ratio of the best Python figure to Loom's. The Python figures are those published in
WORKLOADS.md ("Peers and targets", measured on a 2-core machine of the same kind); they are
hard-coded below. Standard library only.
"""

import argparse
import json
import sys

# From WORKLOADS.md, "Peers and targets": per run (W4 per run, W5 for the whole workload).
# Values in microseconds (W5: seconds and MB); the text columns are as published.
PEERS = {
    "W1_chain3": {"best_us": 263, "langgraph": "588 µs", "pydantic_ai": "761 µs", "loomflow_py": "263 µs", "target": "≤ 1 µs"},
    "W2_route": {
        "best_us": 371,
        "langgraph": "957 µs",
        "pydantic_ai": "3,494 µs",
        "loomflow_py": "371 µs (1,704 default memory)",
        "target": "≤ 4 µs",
    },
    "W3_tool_loop": {
        "best_us": 167,
        "langgraph": "1,917 µs",
        "pydantic_ai": "2,162 µs",
        "loomflow_py": "167 µs (846 default memory)",
        "target": "≤ 4 µs",
    },
    "W4_fanout100": {"best_us": 31_000, "langgraph": "36 ms", "pydantic_ai": "236 ms", "loomflow_py": "31 ms", "target": "≤ 150 µs"},
    "W5_concurrent": {
        "best_s": 13.9,
        "best_mb": 374,
        "langgraph": "65 s, 666 MB",
        "pydantic_ai": "138 s, 883 MB",
        "loomflow_py": "57.6 s shared agent",
        "target": "≤ 0.06 s, ≤ 80 MB",
    },
    "W7_supervisor": {"best_us": None, "langgraph": "—", "pydantic_ai": "—", "loomflow_py": "—", "target": "≤ 3× plain ReAct"},
    "W8_rewoo": {"best_us": None, "langgraph": "—", "pydantic_ai": "—", "loomflow_py": "—", "target": "≤ 3× plain ReAct"},
    "W6_structured": {
        "best_us": 372,
        "langgraph": "1,077 µs",
        "pydantic_ai": "3,361 µs",
        "loomflow_py": "372 µs (811 default memory)",
        "target": "≤ 5 µs",
    },
}

LABELS = {
    "W1_chain3": "W1 chain3",
    "W2_route": "W2 route",
    "W3_tool_loop": "W3 tool loop",
    "W4_fanout100": "W4 fanout100",
    "W5_concurrent": "W5 10k sessions",
    "W6_structured": "W6 structured",
    "W7_supervisor": "W7 supervisor, 3 workers",
    "W8_rewoo": "W8 ReWOO, 6 steps",
    "cold_start": "cold start",
    "journal_step_sqlite": "journal step, SQLite",
    "journal_step_postgres": "journal step, PostgreSQL",
}

VARIANT_LABELS = {"macro": "`#[workflow]`", "builder": "builder", "chain": "`Workflow::chain`"}

ORDER = list(LABELS)


def fmt_us(us):
    """A duration given in microseconds, with a unit that suits it."""
    if us >= 10_000:
        return f"{us / 1000:,.1f} ms"
    if us >= 100:
        return f"{us:,.0f} µs"
    if us >= 10:
        return f"{us:.1f} µs"
    return f"{us:.2f} µs"


def fmt_ratio(x):
    return f"{x:,.0f}×" if x >= 10 else f"{x:.1f}×"


def read_lines(paths):
    """The benchmark's JSON objects, from files or stdin; other lines are skipped."""
    streams = [open(p, encoding="utf-8") for p in paths] if paths else [sys.stdin]
    records = []
    for stream in streams:
        for line in stream:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("framework") == "loom":
                records.append(record)
    return records


def loom_cell(r):
    """Loom's figure for one line, and the number the ratio divides by (None when there is none)."""
    if "skipped" in r:
        return f"skipped: {r['skipped']}", None
    if not r.get("verified"):
        return f"**failed**: {r.get('error', 'a check failed')}", None
    w = r["workload"]
    if w == "W5_concurrent":
        return f"{r['wall_s']:.3g} s, {r['peak_rss_mb']:.0f} MB", r["wall_s"]
    if w == "cold_start":
        return f"{r['median_ms']:.1f} ms (median of {r['n']} processes)", None
    if "vs_react" in r:
        return f"{fmt_us(r['per_run_us'])} ({r['vs_react']:.1f}× the same work as plain ReAct, {fmt_us(r['react_us'])})", None
    if w.startswith("journal_step"):
        return f"{fmt_us(r['per_run_us'])} per run, {fmt_us(r['per_step_us'])} per step", None
    return fmt_us(r["per_run_us"]), r["per_run_us"]


def ratio_cell(r, loom):
    peer = PEERS.get(r["workload"])
    if peer is None or loom is None or loom <= 0:
        return "—"
    if r["workload"] == "W5_concurrent":
        time = fmt_ratio(peer["best_s"] / loom)
        mem = fmt_ratio(peer["best_mb"] / r["peak_rss_mb"]) if r.get("peak_rss_mb") else "—"
        return f"{time} (memory {mem})"
    return fmt_ratio(peer["best_us"] / loom)


def best_cell(workload):
    peer = PEERS.get(workload)
    if peer is None:
        return "—"
    if workload == "W5_concurrent":
        return f"{peer['best_s']} s, {peer['best_mb']} MB"
    if peer.get("best_us") is None:
        return "—"
    return fmt_us(peer["best_us"])


def main_value(r):
    """The figure a line is judged by (smaller is better)."""
    for key in ("per_run_us", "wall_s", "median_ms"):
        if key in r:
            return r[key]
    return 0


def medians(records):
    """One record per (workload, variant): the verified run with the median figure."""
    groups = {}
    for r in records:
        groups.setdefault((r["workload"], r.get("variant")), []).append(r)
    chosen = []
    for group in groups.values():
        ok = sorted((r for r in group if r.get("verified") and "skipped" not in r), key=main_value)
        if ok:
            pick = dict(ok[len(ok) // 2])
            pick["runs"] = len(ok)
            chosen.append(pick)
        else:
            chosen.append(group[0])
    return chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", help="files of JSON lines (default: stdin)")
    args = parser.parse_args()

    records = read_lines(args.files)
    if not records:
        sys.exit("no benchmark lines found (run: cargo bench -p loomflow --bench workloads -- --json)")
    records = medians(records)
    records.sort(key=lambda r: ORDER.index(r["workload"]) if r["workload"] in ORDER else len(ORDER))

    print("| workload | Loom | Loom target | best Python peer | LangGraph 1.2 | pydantic-ai 2.62 | loomflow 0.20 (Python) | best Python / Loom |")
    print("|---|---|---|---|---|---|---|---|")
    for r in records:
        w = r["workload"]
        label = LABELS.get(w, w)
        if r.get("variant"):
            label += f" ({VARIANT_LABELS.get(r['variant'], r['variant'])})"
        loom, value = loom_cell(r)
        peer = PEERS.get(w, {})
        cells = [
            label,
            loom,
            peer.get("target", "—"),
            best_cell(w),
            peer.get("langgraph", "—"),
            peer.get("pydantic_ai", "—"),
            peer.get("loomflow_py", "—"),
            ratio_cell(r, value),
        ]
        print("| " + " | ".join(cells) + " |")
    print()
    runs = max((r.get("runs", 1) for r in records), default=1)
    if runs > 1:
        print(f"Loom figures: the median of {runs} runs, each workload in a fresh process.")
    print("Python figures: WORKLOADS.md (same workloads, scripts, counts and checks, on a 2-core machine of the same kind).")


if __name__ == "__main__":
    main()
