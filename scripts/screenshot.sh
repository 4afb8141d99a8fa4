#!/usr/bin/env bash
# Takes assets/screenshot.png: the real desktop client in a real window under Xvfb, logged
# in to a real broker and server, with scripted users chatting. Run from anywhere:
#   scripts/screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need=(Xvfb import xdotool)
for tool in "${need[@]}"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    apt-get update
    apt-get install -y --no-install-recommends xvfb xauth xdotool imagemagick \
      libx11-6 libxcursor1 libxrandr2 libxi6 libxkbcommon-x11-0 libxcb1 libgl1 \
      libglx-mesa0 libgl1-mesa-dri libegl1 libegl-mesa0
    break
  fi
done

cargo build --release -p broker -p server -p gui-client
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# Waits for the line "PREFIX ADDR" in FILE and prints ADDR.
wait_addr() {
  local file=$1 prefix=$2
  for _ in $(seq 100); do
    if grep -q "^$prefix" "$file" 2>/dev/null; then
      sed -n "s/^$prefix//p" "$file" | head -1
      return
    fi
    sleep 0.1
  done
  echo "timed out waiting for '$prefix' in $file" >&2
  exit 1
}

CHAT_DATA_DIR="$tmp/data" target/release/broker --listen 127.0.0.1:0 >"$tmp/broker.out" &
pids+=($!)
broker=$(wait_addr "$tmp/broker.out" "listening on ")
target/release/server --broker "$broker" --listen 127.0.0.1:0 --text-listen off >"$tmp/server.out" &
pids+=($!)
addr=$(wait_addr "$tmp/server.out" "listening on ")
port=${addr##*:}

display=:97
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp &
pids+=($!)
for _ in $(seq 100); do
  DISPLAY="$display" xdotool getdisplaygeometry >/dev/null 2>&1 && break
  sleep 0.1
done
python3 scripts/screenshot_bots.py --port "$port" >"$tmp/bots.out" &
pids+=($!)
wait_addr "$tmp/bots.out" "ready" >/dev/null   # the bots are in before alice arrives
# A private HOME so the remembered form of the person running this is left alone.
HOME="$tmp" DISPLAY="$display" target/release/gui-client \
  --server "127.0.0.1:$port" --name alice --connect &
pids+=($!)

window=$(DISPLAY="$display" xdotool search --sync --name '^Chat$' | head -1)
sleep 3   # the bots' conversation (they start when alice joins)
# Focus is in the message box right after connecting: just type and press Enter.
DISPLAY="$display" xdotool windowfocus --sync "$window"
DISPLAY="$display" xdotool type --delay 20 "thanks carol, that would help!"
DISPLAY="$display" xdotool key Return
sleep 1
DISPLAY="$display" import -window "$window" assets/screenshot.png
echo "wrote assets/screenshot.png"
