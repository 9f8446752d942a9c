#!/usr/bin/env bash
# The one command that sets up and runs dxhub with embedded defaults:
#   bash scripts/run.sh            # build (release) and serve: HTTP :8080, DICOM :11112, AE DXHUB, data in ./dxhub-data
#   bash scripts/run.sh --demo     # … and, on a new data dir, register a demo alliance, institutions and
#                                  #     the calling AE title DEMO (from 127.0.0.1) so storescu can send at once
# Extra arguments after the options are passed to `dxhub serve` (e.g. --http 127.0.0.1:9080).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

demo=0
if [ "${1:-}" = "--demo" ]; then demo=1; shift; fi

command -v cargo >/dev/null || { echo "scripts/run.sh: cargo (Rust) is required" >&2; exit 1; }
# build needs: a C compiler (openjpeg-sys), cmake (CharLS); runtime: a CJK font for the
# Chinese text of ECG PNGs
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v cmake >/dev/null || need+=(cmake)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
# the web app (viewer/) is built with Node and npm
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing ${need[*]} (apt-get)…" >&2
  sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo build --release -p dxhub
bash scripts/build-viewer.sh   # viewer/dist, served at / (rebuilt only when changed)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/dxhub"
DATA="${DXHUB_DATA_DIR:-./dxhub-data}"

if [ "$demo" = 1 ] && [ ! -e "$DATA/index.sqlite" ]; then
  "$BIN" --data-dir "$DATA" admin alliance add 演示医共体
  "$BIN" --data-dir "$DATA" admin institution add --alliance 演示医共体 --name 县人民医院 --level county --population 450000
  "$BIN" --data-dir "$DATA" admin institution add --alliance 演示医共体 --name 城关镇卫生院 --level township --parent 县人民医院 --population 52000
  "$BIN" --data-dir "$DATA" admin institution add --alliance 演示医共体 --name 城关村卫生室 --level village --parent 城关镇卫生院 --population 2100
  "$BIN" --data-dir "$DATA" admin ae add --institution 城关镇卫生院 --ae-title DEMO --host 127.0.0.1
  echo "demo: send with   storescu -aet DEMO -aec DXHUB 127.0.0.1 11112 FILE.dcm" >&2
  token=$("$BIN" --data-dir "$DATA" admin device add --institution 城关村卫生室 --serial DEMO-ECG-1 --model DEMO 2>/dev/null)
  echo "demo: the village ECG device's upload token (shown once): $token" >&2
  echo "demo: upload with curl -H 'Authorization: Bearer $token' --data-binary @ECG_FILE http://127.0.0.1:8080/api/v1/ecg" >&2
fi

exec "$BIN" --data-dir "$DATA" serve "$@"
