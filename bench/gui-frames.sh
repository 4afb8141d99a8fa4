#!/usr/bin/env bash
# Issue 13's frame time: the real desktop client in a real window under Xvfb (so Mesa's
# software renderer, llvmpipe), scrolling through 100,000 messages of mixed lengths, one
# wheel step a frame; `gui-client --frame-bench FRAMES` prints the time between frames.
#
#   bench/gui-frames.sh [RUNS] [FRAMES]     # default 3 runs of 600 frames
#   BIN=old/gui-client bench/gui-frames.sh 1  # another build (an A/B: alternate the two)
#
# Writes JSON lines to bench/results/gui-frames-<date>.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
frames=${2:-600}
. scripts/xvfb-deps.sh
cargo build --release -p gui-client >&2
bin=${BIN:-target/release/gui-client}
out="bench/results/gui-frames-$(date +%Y-%m-%d).jsonl"
mkdir -p bench/results
tmp=$(mktemp -d)
display=:96
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
  DISPLAY="$display" xdotool getdisplaygeometry >/dev/null 2>&1 && break
  sleep 0.1
done
# Each run: 100,000 messages, then an empty room (the renderer's and egui's own floor).
for r in $(seq "$runs"); do
  for lines in 100000 0; do
    line=$(HOME="$tmp" DISPLAY="$display" timeout 300 "$bin" \
      --frame-bench "$frames" --frame-bench-lines "$lines" 2>/dev/null | tail -1)
    echo "{\"bin\":\"$bin\",\"run\":$r,\"lines\":$lines,\"window\":\"900x600\",\"result\":$line}" | tee -a "$out"
  done
done
