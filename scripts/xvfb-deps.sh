# Installs what a real window under Xvfb needs (the Debian packages), if missing: sourced by
# scripts/screenshot.sh and bench/gui-frames.sh.
for tool in Xvfb import xdotool; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    apt-get update
    apt-get install -y --no-install-recommends xvfb xauth xdotool imagemagick \
      libx11-6 libxcursor1 libxrandr2 libxi6 libxkbcommon-x11-0 libxcb1 libgl1 \
      libglx-mesa0 libgl1-mesa-dri libegl1 libegl-mesa0
    break
  fi
done
