#!/usr/bin/env python3
"""Prints a Markdown table of a run-all.sh results file (one JSON line per run)."""
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
    ("tool_cpu_share", "tool CPU"),
]


def main(path):
    print("| run | figures | latency avg / p50 / p99 (ms) |")
    print("|---|---|---|")
    for raw in open(path):
        row = json.loads(raw)
        if "error" in row:
            print(f"| {row['label']} | failed: {row['error'][-120:].strip()} | |")
            continue
        r = row["result"]
        figs = r["figures"]
        parts = [f"{name} {figs[k]}" for k, name in KEYS if k in figs]
        lats = "; ".join(
            f"{n}: {l['avg_ms']:.2f} / {l['p50_ms']:.2f} / {l['p99_ms']:.2f}"
            for n, l in r["latency"].items() if l["count"]
        )
        print(f"| {row['label']} | {', '.join(parts)} | {lats} |")


if __name__ == "__main__":
    main(sys.argv[1])
