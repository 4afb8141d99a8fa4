#!/usr/bin/env python3
"""Summarises a bench/limits.sh results file: per workload, the median over rounds with the
server's defaults and with flood control off, and their ratio; for the flood case, the bots'
latency with 0, 1 and 2 flooders and its ratio to no flooder. Every figure of one table
comes from the same run of limits.sh (same machine, same build, alternating modes).
"""
import json
import statistics
import sys
from collections import defaultdict

# What "throughput" is for each scenario: the figure, and its name.
THROUGHPUT = {
    "payload": ("mb_per_s", "MB/s"),
    "rtt": ("round_trips_per_s", "round trips/s"),
    "ramp": ("peak_stable_connections", "clients"),
}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=3):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"
    return f"{x:,}"


def latency(r, kind, q):
    lat = r["latency"].get(kind)
    return lat[q] if lat and lat["count"] else None


def main(path):
    runs = defaultdict(list)
    failures = []
    for raw in open(path):
        row = json.loads(raw)
        if "error" in row:
            failures.append(row)
            continue
        runs[(row["label"], row["mode"])].append(row["result"])

    print("| workload | defaults | flood control off | defaults / off | errors (defaults, off) "
          "| login p50 / p99 ms (defaults) | tool CPU share |")
    print("|---|---|---|---|---|---|---|")
    labels = sorted({label for label, _ in runs if not label.startswith("stress")})
    for label in labels:
        d, o = runs.get((label, "defaults"), []), runs.get((label, "off"), [])
        if not d:
            continue
        key, unit = THROUGHPUT[d[0]["scenario"]]
        td = med([r["figures"].get(key) for r in d])
        to = med([r["figures"].get(key) for r in o])
        ratio = f"{td / to:.2f}" if td and to else "-"
        errs = lambda rs: sum(
            r["figures"].get("error_frames", 0) + r["figures"].get("logins_failed", 0) for r in rs
        )
        login = (med([latency(r, "login", "p50_ms") for r in d]),
                 med([latency(r, "login", "p99_ms") for r in d]))
        tool = med([r["figures"].get("tool_cpu_share") for r in d + o])
        print(f"| {label} ({len(d)}+{len(o)} runs) | {fmt(td)} {unit} | {fmt(to)} {unit} | {ratio} "
              f"| {errs(d)}, {errs(o)} | {fmt(login[0])} / {fmt(login[1])} | {fmt(tool)} |")

    print()
    print("| flood case, defaults | bots' public p50 / p99 ms | p99 / no flooder | bots' private p99 ms "
          "| bots' error frames | flood messages sent (median) | flooders cut off | tool CPU share |")
    print("|---|---|---|---|---|---|---|---|")
    base = None
    for label in sorted(label for label, _ in runs if label.startswith("stress")):
        rs = runs[(label, "defaults")]
        p50 = med([latency(r, "public", "p50_ms") for r in rs])
        p99 = med([latency(r, "public", "p99_ms") for r in rs])
        priv = med([latency(r, "private", "p99_ms") for r in rs])
        if base is None:
            base = p99
        ratio = f"{p99 / base:.2f}" if p99 and base else "-"
        errors = sum(r["figures"].get("error_frames", 0) for r in rs)
        sent = med([r["figures"].get("flood_sent") for r in rs])
        cut = sum(r["figures"].get("flood_disconnects", 0) for r in rs)
        tool = med([r["figures"].get("tool_cpu_share") for r in rs])
        print(f"| {label} ({len(rs)} runs) | {fmt(p50)} / {fmt(p99)} | {ratio} | {fmt(priv)} "
              f"| {errors} | {fmt(sent)} | {cut} | {fmt(tool)} |")
    for f in failures:
        print(f"\nfailed: {f['label']} ({f['mode']}): {f['error'][-200:].strip()}")


if __name__ == "__main__":
    main(sys.argv[1])
