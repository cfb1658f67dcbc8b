"""The executors benchmark's targets and how it prints what it found (``bench/executors.py``):
part a's overhead, part b's bytes, part c's scaling table with the CPU by kind of process and
each attempt's phases."""

from __future__ import annotations

import os
from typing import Any

import timeline

OVERHEAD_MS = 50.0
"""a. What the Ray executor may add per attempt beyond the bundle transfer."""
BYTES_LIMIT = 100 * 1024
"""b. Bytes each way for a one-file change after the first sync."""
WALL_RATIO = 1.2
"""c. Wall time against the ideal at every size."""
CORES = os.cpu_count() or 1


def _kb(n: int) -> str:
    return f"{n / 1024:,.1f} KB"


def report(found: dict[str, Any]) -> str:
    ok = {True: "pass", False: "FAIL"}
    lines = []
    for key, value in found.items():
        if isinstance(value, str):
            lines += [f"{key}. not measured: {value}", ""]
    if isinstance(found.get("a"), dict):
        a = found["a"]
        lines += [
            f"a. per attempt, no-op chain of {a['attempts']} tasks (medians)",
            "",
            "| local | ray | bundle transfer | ray adds beyond the transfer | target |",
            "| ---: | ---: | ---: | ---: | --- |",
            f"| {a['local_ms']:.0f} ms | {a['ray_ms']:.0f} ms | {a['transfer_ms']:.1f} ms | "
            f"{a['added_ms']:+.0f} ms | <= {OVERHEAD_MS:.0f} ms: {ok[a['pass']]} |",
            "",
            f"transfer: {a['back_ms']:.1f} ms back per attempt, plus {a['into_ms']:.1f} ms out "
            f"for the {a['share_in']:.0%} of attempts whose node lacked the base",
            "",
        ]
    if isinstance(found.get("b"), dict):
        b = found["b"]
        lines += [
            f"b. bytes per attempt, {b['files']:,}-file repository (max over {b['rounds']} "
            "one-file rounds)",
            "",
            "| | daemon -> worker | worker -> daemon | target |",
            "| --- | ---: | ---: | --- |",
            f"| first sync | {_kb(b['first_sent'])} | {_kb(b['first_received'])} | |",
            f"| one-file change after it | {_kb(b['sent_max'])} | {_kb(b['received_max'])} | "
            f"<= 100 KB each way: {ok[b['pass']]} |",
            "",
        ]
    if isinstance(found.get("c"), list):
        lines += [
            "c. independent tasks with a timed scripted agent",
            "",
            "| executor | nodes | slots | tasks x step | wall | ideal | ratio | attempts per node "
            f"| machine CPU busy ({CORES} cores) | CPU s per attempt | target |",
            "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | --- |",
        ]
        for r in found["c"]:
            per_node = ", ".join(map(str, r["per_node"])) or "-"
            nodes = r["nodes"] if r["executor"] == "ray" else "(this process)"
            target = f"<= {WALL_RATIO}x: {ok[r['pass']]}" if r["executor"] == "ray" else "baseline"
            lines.append(
                f"| {r['executor']} | {nodes} | {r['slots']} | {r['tasks']} x {r['step_s']:g} s | "
                f"{r['wall_s']:.1f} s | {r['ideal_s']:.0f} s | {r['ratio']:.2f}x | {per_node} | "
                f"{r['cpu_busy']:.0%} | {r['cpu_s'] / r['tasks']:.2f} s | {target} |"
            )
        lines += ["", "CPU s per attempt by kind of process (with the commands each ran):", ""]
        for r in found["c"]:
            split = ", ".join(f"{kind} {s:.2f}" for kind, s in r["cpu_split"].items())
            lines.append(f"- {r['executor']} {r['nodes']}: {split}")
        lines += ["", "Each attempt's phases, median / max (bench/timeline.py):", ""]
        for r in found["c"]:
            lines.append(f"- {r['executor']} {r['nodes']}: {timeline.describe(r['timeline'])}")
    return "\n".join(lines)
