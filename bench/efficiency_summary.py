#!/usr/bin/env python3
"""Prints issue 11's table from a bench/efficiency.sh results file (one JSON line per run).

For every row and side: the median of its runs (the range in brackets) and the tool's own
CPU share; then each side against ngircd, when it ran. What is compared per row:

- fan100x10, fan1000x1: CPU µs per delivery of the system (server + broker; ngircd alone);
- rtt1000x20: round trips per second (and the system's CPU per round trip);
- p99: p99 latency of the deliveries, ms;
- ramp: server RSS per connection, KiB.
"""
import json
import statistics
import sys
from collections import defaultdict

ROWS = [
    ("fan100x10", "fanout 100 × 10 at 200 msg/s: CPU per delivery", "system_us_per_delivery", "µs", False),
    ("fan1000x1", "fanout 1,000 × 1 at 200 msg/s: CPU per delivery", "system_us_per_delivery", "µs", False),
    ("rtt1000x20", "rtt 1,000 × 20: round trips per second", "round_trips_per_s", "/s", True),
    ("p99", "fanout 1,000 × 1 at 100 msg/s: p99 latency", "p99", "ms", False),
    ("ramp", "19,000 idle clients: server RSS per connection", "server_rss_kib_per_conn", "KiB", False),
]


def value(result, key):
    figs = result["figures"]
    if key == "p99":
        for lat in result["latency"].values():
            if lat["count"]:
                return lat["p99_ms"]
        return None
    return figs.get(key)


def fmt(x):
    return f"{x:,.0f}" if x >= 1000 else f"{x:.3g}"


def main(path):
    runs = defaultdict(list)
    sides = []
    for raw in open(path):
        row = json.loads(raw)
        if row["side"] not in sides:
            sides.append(row["side"])
        runs[(row["row"], row["side"])].append(row["result"])
    print("| workload | " + " | ".join(sides) + " |" + "".join(f" {s} / ngircd |" for s in sides if s != "ngircd" and "ngircd" in sides))
    print("|---|" + "---|" * len(sides) + "---|" * sum(1 for s in sides if s != "ngircd" and "ngircd" in sides))
    for row, title, key, unit, higher in ROWS:
        cells, medians = [], {}
        for side in sides:
            vals = [v for v in (value(r, key) for r in runs.get((row, side), [])) if v is not None]
            tools = [r["figures"].get("tool_cpu_share") for r in runs.get((row, side), [])]
            tools = [t for t in tools if t is not None]
            if not vals:
                cells.append("-")
                continue
            m = statistics.median(vals)
            medians[side] = m
            spread = f" ({fmt(min(vals))}–{fmt(max(vals))})" if len(vals) > 1 else ""
            tool = f", tool {statistics.median(tools):.2f}" if tools else ""
            cells.append(f"{fmt(m)} {unit}{spread}{tool}")
        ratios = []
        if "ngircd" in sides:
            for side in sides:
                if side == "ngircd":
                    continue
                if side in medians and medians.get("ngircd"):
                    ratios.append(f"{medians[side] / medians['ngircd']:.2f}×")
                else:
                    ratios.append("-")
        print(f"| {title} | " + " | ".join(cells) + " |" + "".join(f" {r} |" for r in ratios))
    print()
    print("Medians of each side's runs (range in brackets); tool = the load tool's own CPU share"
          " (1.0 = one core). Ratios are of the medians; for round trips higher is better,"
          " for the rest lower.")


if __name__ == "__main__":
    main(sys.argv[1])
