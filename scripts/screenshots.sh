#!/usr/bin/env bash
# Screenshots of every studio screen on the demo library: the real binary in a real terminal
# emulator (xterm, as a VT340 so it speaks sixel graphics: thumbnails are real images) under
# Xvfb, driven with xdotool, captured with ImageMagick's import.
# Needs (Debian): xvfb xterm imagemagick xdotool fonts-dejavu-core. Run from the repo root:
#   bash scripts/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/campaign-studio"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export CAMPAIGN_STUDIO_CONFIG_DIR="$WORK/config" CAMPAIGN_STUDIO_DATA_DIR="$WORK/data"
export CAMPAIGN_STUDIO_CACHE_DIR="${CAMPAIGN_STUDIO_CACHE_DIR:-$HOME/.cache/campaign-studio}"

LIB=../shared/data/reference-library
[ -f "$LIB/manifest.jsonl" ] || LIB=demo
"$BIN" models fetch >/dev/null
"$BIN" library ingest "$LIB" --manifest "$LIB/manifest.jsonl" --json >/dev/null
ID=$("$BIN" campaign new --name "Weekend tennis" --brief "People playing tennis on a sunny court, friends having fun" \
  --objective likes --node followers --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
HITS=$("$BIN" campaign recommend "$ID" -k 8 --json | python3 -c 'import json,sys; print(" ".join(h["asset_id"] for h in json.load(sys.stdin)["hits"][:3]))')
"$BIN" campaign select "$ID" $HITS >/dev/null
"$BIN" campaign prompt "$ID" --json >/dev/null 2>&1

export DISPLAY=:99
Xvfb :99 -screen 0 1500x860x24 >/dev/null 2>&1 &
sleep 1
xterm -ti vt340 -xrm 'XTerm*decTerminalID: vt340' -xrm 'XTerm*numColorRegisters: 256' \
  -xrm 'XTerm*allowSendEvents: true' -geometry 150x42+0+0 -fa 'DejaVu Sans Mono' -fs 11 -bg '#1e1e24' -fg '#e6e6e6' -e "$BIN" &
sleep 2
WIN=$(xdotool search --class xterm | head -1)
shot() { sleep "${2:-0.8}"; import -window "$WIN" "screenshots/$1.png"; echo "screenshots/$1.png"; }
key() { xdotool key --window "$WIN" "$@"; }

mkdir -p screenshots
rm -f screenshots/*.png
shot 01-sessions
key Return; shot 02-brief
key Tab; shot 03-references 2
key Right space; shot 04-references-selected 1.5
key Return; shot 05-preview 2
key Escape Tab; shot 06-prompt
key ctrl+s; shot 07-prompt-rewritten 1.5
key Tab; shot 08-generate
key Tab; shot 09-library 2
key F1; shot 10-help
key Escape ctrl+c
