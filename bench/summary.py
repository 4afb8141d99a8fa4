#!/usr/bin/env python3
"""Prints a Markdown table of a run-all.sh results file (one JSON line per run).

Besides each run's figures, two columns that do not depend on how much CPU the load
generator takes from the same cores: the CPU microseconds the system under test (server +
broker, or the one process given) spent per delivery, and the tool's own CPU share. What
one delivery is depends on the scenario (`cpu_delivery_unit` in the JSON line): a message
received by one client (fanout, payload), a round trip (rtt), a frame received (stress),
a login (ramp). Runs recorded before these figures existed show "-".
"""
import json
import sys

KEYS = [
    ("deliveries_per_s", "deliveries/s"),
    ("round_trips_per_s", "round trips/s"),
    ("mb_per_s", "MB/s"),
    ("peak_stable_connections", "clients"),
    ("server_rss_kib_per_conn", "KiB/conn"),
    ("lost", "lost"),
    ("disconnected_listeners", "cut off"),
    ("error_frames", "errors"),
]


def fmt_us(x):
    """Microseconds with three significant digits (0.412, 41.2, 412)."""
    return f"{x:.3g}" if x < 1000 else f"{x:.0f}"


def system_cpu(figs):
    """µs CPU per delivery of server+broker, with the parts when both were measured."""
    total = figs.get("system_us_per_delivery")
    if total is None:
        errors = [figs[k] for k in ("server_cpu_error", "broker_cpu_error") if k in figs]
        return f"not measured: {errors[0][:60]}" if errors else "-"
    parts = [figs.get(f"{r}_us_per_delivery") for r in ("server", "broker")]
    if all(p is not None for p in parts):
        return f"{fmt_us(total)} ({fmt_us(parts[0])} + {fmt_us(parts[1])})"
    return fmt_us(total)


def main(path):
    print("| run | figures | µs CPU/delivery (server+broker) | tool CPU share "
          "| latency avg / p50 / p99 (ms) |")
    print("|---|---|---|---|---|")
    units = {}
    for raw in open(path):
        row = json.loads(raw)
        if "error" in row:
            print(f"| {row['label']} | failed: {row['error'][-120:].strip()} | | | |")
            continue
        r = row["result"]
        figs = r["figures"]
        parts = [f"{name} {figs[k]}" for k, name in KEYS if k in figs]
        lats = "; ".join(
            f"{n}: {l['avg_ms']:.2f} / {l['p50_ms']:.2f} / {l['p99_ms']:.2f}"
            for n, l in r["latency"].items() if l["count"]
        )
        tool = figs.get("tool_cpu_share", "-")
        print(f"| {row['label']} | {', '.join(parts)} | {system_cpu(figs)} | {tool} | {lats} |")
        if "cpu_delivery_unit" in figs:
            units.setdefault(r["scenario"], figs["cpu_delivery_unit"])
    if units:
        print()
        print("One delivery: " + "; ".join(f"{s}: {u}" for s, u in sorted(units.items())) + ".")


if __name__ == "__main__":
    main(sys.argv[1])
