#!/usr/bin/env bash
# A screenshot of stepup-studio in a real window under Xvfb, on a machine without a GPU
# (OpenGL through Mesa's software renderer). Usage: scripts/screenshot.sh [OUT.png]
# STUDIO_ARGS replaces the studio's arguments (default: the impossible-travel story selected).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/studio.png}"
mkdir -p "$(dirname "$out")"

if ! command -v xvfb-run >/dev/null 2>&1 || ! command -v import >/dev/null 2>&1; then
  echo "scripts/screenshot.sh: installing xvfb, Mesa's GL drivers and imagemagick"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq xvfb xauth libgl1-mesa-dri imagemagick >/dev/null
fi

cargo build -q -p stepup-studio
XDG_RUNTIME_DIR="$(mktemp -d)"
chmod 700 "$XDG_RUNTIME_DIR"
export XDG_RUNTIME_DIR LIBGL_ALWAYS_SOFTWARE=1
abs_out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
xvfb-run -a -s "-screen 0 1500x900x24" bash -c "
  target/debug/stepup-studio ${STUDIO_ARGS:-rules examples/scenarios --select 07_impossible_travel:1} &
  pid=\$!
  sleep \${STUDIO_WAIT:-10}
  import -window root '$abs_out'
  kill \$pid"
echo "wrote $out"
