#!/usr/bin/env bash
# dxhub web app benchmark (issue #8): on loopback, how fast the first image of a 300-slice
# CT shows after opening the study, and how fast the stack scrolls once loaded — dxhub's
# reading page and, side by side in the same run, OHIF (the field's cornerstone3D viewer,
# `@ohif/app` as the tests use it) on the same dxhub archive and the same study.
#
#   bash bench/viewer/run.sh              # 300 slices, 3 runs per target
#   BENCH_REPEAT=5 bash bench/viewer/run.sh
#
# VB_TRACE=1 (passed through) adds what was fetched before the first image to each run's JSON.
# Targets: first image < 1 s, scrolling ≥ 20 images/s (dxhub's app). Method: measure.mjs
# (Playwright timings in headless Chromium). Environment:
#   BENCH_SLICES    slices of the CT series (default 300; 512x512, 16-bit)
#   BENCH_REPEAT    runs per target, interleaved; medians reported (default 3)
#   BENCH_TARGETS   default "dxhub ohif"
#   BENCH_NO_BUILD  1 uses the existing target/release/dxhub
# Not part of the test suite; needs root only to install what is missing.
set -euo pipefail

SLICES=${BENCH_SLICES:-300}
REPEAT=${BENCH_REPEAT:-3}
TARGETS=${BENCH_TARGETS:-"dxhub ohif"}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH=$(dirname "$HERE")
ROOT=$(dirname "$BENCH")
OUT=$BENCH/out
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOGDIR=$OUT/viewer-logs-$STAMP
RESULTS=$OUT/viewer-results-$STAMP.md
mkdir -p "$LOGDIR"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$OUT/viewer-run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- prerequisites
# Chromium, node, playwright-core, the OHIF dist and dxhub's viewer/dist: the test
# command's own installer.
# shellcheck source=scripts/lib-peers.sh
. "$ROOT/scripts/lib-peers.sh"
peers_ensure_browser || die "browser peers missing (see above)"
need_apt=()
[ -x /usr/bin/dcmsend ] || need_apt+=(dcmtk)
command -v curl >/dev/null || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
PY=""
for cand in "$ROOT/.venv/bin/python" "$BENCH/.venv/bin/python"; do
    if [ -x "$cand" ] && "$cand" -c 'import pydicom, numpy' 2>/dev/null; then PY=$cand; break; fi
done
if [ -z "$PY" ]; then
    log "creating $BENCH/.venv with pydicom and numpy"
    python3 -m venv "$BENCH/.venv"
    "$BENCH/.venv/bin/pip" install -q pydicom numpy
    PY=$BENCH/.venv/bin/python
fi
DXHUB=$ROOT/target/release/dxhub
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    log "cargo build --release -p dxhub"
    (cd "$ROOT" && cargo build --release -p dxhub) >"$LOGDIR/build.log" 2>&1 \
        || { tail -30 "$LOGDIR/build.log" >&2; die "release build failed"; }
fi
[ -x "$DXHUB" ] || die "$DXHUB missing"

# ---------------------------------------------------------------- data
DATA=$OUT/viewer-data-$SLICES
if [ ! -f "$DATA/ready" ]; then
    rm -rf "$DATA"
    log "generating a $SLICES-slice CT series (512x512, 16-bit) into $DATA"
    "$PY" "$BENCH/ingest/gen_ct.py" ct "$DATA/files" "$SLICES" --dirs 1 --series 1 2>"$LOGDIR/gen.log"
    "$PY" -c 'import os, sys, pydicom
d = sys.argv[1]
f = sorted(os.listdir(d))[0]
print(pydicom.dcmread(os.path.join(d, f), stop_before_pixels=True).StudyInstanceUID)' "$DATA/files/0" >"$DATA/study.txt"
    touch "$DATA/ready"
fi
STUDY=$(cat "$DATA/study.txt")

# ---------------------------------------------------------------- the hub and OHIF
port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
RUN=$OUT/viewer-run
rm -rf "$RUN"
mkdir -p "$RUN"
for a in "alliance add B" "institution add --alliance B --name H --level county" \
         "ae add --institution H --ae-title BENCH"; do
    # shellcheck disable=SC2086
    "$DXHUB" --data-dir "$RUN/data" admin $a >>"$LOGDIR/admin.log" 2>&1 || die "dxhub admin $a failed"
done
printf 'Bench-password-42\n' | "$DXHUB" --data-dir "$RUN/data" admin user add --institution H \
    --login bench.admin --role group_admin --password-stdin >>"$LOGDIR/admin.log" 2>&1 || die "user add failed"
TOKEN=$("$DXHUB" --data-dir "$RUN/data" admin token issue --login bench.admin --ttl 4h 2>>"$LOGDIR/admin.log")
HTTP=$(port)
DIMSE=$(port)
env -u RUST_BACKTRACE DXHUB_HTTP__VIEWER_DIR="$DXHUB_TEST_VIEWER_DIST" setsid "$DXHUB" --data-dir "$RUN/data" serve \
    --http "127.0.0.1:$HTTP" --dicom "127.0.0.1:$DIMSE" >"$LOGDIR/dxhub.stdout" 2>"$LOGDIR/dxhub.log" </dev/null &
PIDS+=($!)
for _ in $(seq 1 600); do grep -q '"event":"ready"' "$LOGDIR/dxhub.stdout" 2>/dev/null && break; sleep 0.1; done
grep -q '"event":"ready"' "$LOGDIR/dxhub.stdout" || die "dxhub did not start (see $LOGDIR/dxhub.log)"
# the app asks a group admin without TOTP to enrol first: enrol through the API
"$PY" - "http://127.0.0.1:$HTTP" "$TOKEN" <<'EOF' || die "TOTP enrolment failed"
import base64, hmac, json, struct, sys, time, urllib.request
base, token = sys.argv[1], sys.argv[2]
def post(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), method="POST",
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        t = r.read()
        return json.loads(t) if t else None
secret = post("/api/v1/auth/totp/enroll", {})["secret"]
key = base64.b32decode(secret + "=" * (-len(secret) % 8))
h = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), "sha1").digest()
o = h[-1] & 15
post("/api/v1/auth/totp/confirm", {"code": "%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7fffffff) % 1000000)})
EOF
log "sending $SLICES slices to dxhub"
TCP_NODELAY=1 /usr/bin/dcmsend -aet BENCH -aec DXHUB 127.0.0.1 "$DIMSE" +sd +r "$DATA/files" \
    --scan-pattern 'ct*.dcm' >"$LOGDIR/dcmsend.log" 2>&1 || die "dcmsend failed"
n=$(curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$HTTP/dicomweb/studies/$STUDY/series" \
    | "$PY" -c 'import json, sys; print(sum(s["00201209"]["Value"][0] for s in json.load(sys.stdin)))')
[ "$n" -eq "$SLICES" ] || die "dxhub has $n instances of the study, expected $SLICES"

setsid node "$ROOT/tests/js/serve_ohif.mjs" --dist "$DXHUB_TEST_OHIF_DIST" \
    --dicomweb "http://127.0.0.1:$HTTP/dicomweb" --proxy >"$LOGDIR/ohif.stdout" 2>"$LOGDIR/ohif.log" </dev/null &
PIDS+=($!)
for _ in $(seq 1 300); do grep -q '"event":"ready"' "$LOGDIR/ohif.stdout" 2>/dev/null && break; sleep 0.1; done
OHIF=$("$PY" -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["url"])' "$LOGDIR/ohif.stdout") \
    || die "serve_ohif.mjs did not start (see $LOGDIR/ohif.log)"

# ---------------------------------------------------------------- runs
declare -A RUNS
for i in $(seq 1 "$REPEAT"); do
    for t in $TARGETS; do
        case $t in
            dxhub) url="http://127.0.0.1:$HTTP/read/$STUDY" ;;
            ohif) url="$OHIF/viewer?StudyInstanceUIDs=$STUDY&token=$TOKEN" ;;
            *) die "unknown target $t" ;;
        esac
        log "$t run $i"
        line=$(VB_TARGET=$t VB_URL=$url VB_COOKIE_URL="http://127.0.0.1:$HTTP" VB_TOKEN=$TOKEN \
            VB_SLICES=$SLICES VB_ARTIFACTS="$LOGDIR" node "$HERE/measure.mjs" 2>>"$LOGDIR/measure-$t.log") \
            || die "$t run $i failed (see $LOGDIR/measure-$t.log)"
        printf '%s\n' "$line" >>"$LOGDIR/runs.jsonl"
        RUNS[$t]+="$line"$'\n'
    done
done

# ---------------------------------------------------------------- table
"$PY" - "$LOGDIR/runs.jsonl" "$SLICES" "$(date -u -r "$DXHUB" '+%Y-%m-%d %H:%M UTC')" "$(git -C "$ROOT" rev-parse --short HEAD)" >"$RESULTS" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
slices, built, head = sys.argv[2], sys.argv[3], sys.argv[4]
print(f"# dxhub web app vs OHIF, {slices}-slice CT (512x512, 16-bit), loopback\n")
print(f"dxhub release binary built {built}, HEAD {head}; {len(runs)} runs; medians (min-max).\n")
print("| viewer | first image ms | scroll images/s | DOMContentLoaded ms | warm-up pass ms |")
print("|---|---:|---:|---:|---:|")
med = {}
for t in dict.fromkeys(r["target"] for r in runs):
    rs = [r for r in runs if r["target"] == t]
    def cell(k, fmt="{:.0f}"):
        v = [r[k] for r in rs]
        return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}-{fmt.format(max(v))})"
    med[t] = (statistics.median(r["first_image_ms"] for r in rs), statistics.median(r["scroll_ips"] for r in rs))
    print(f"| {t} | {cell('first_image_ms')} | {cell('scroll_ips', '{:.1f}')} | {cell('dom_content_loaded_ms')} | {cell('warmup_ms')} |")
print()
if "dxhub" in med:
    fi, ips = med["dxhub"]
    print(f"- {'PASS' if fi < 1000 else 'FAIL'}: first image < 1 s (dxhub median {fi:.0f} ms)")
    print(f"- {'PASS' if ips >= 20 else 'FAIL'}: scrolling ≥ 20 images/s (dxhub median {ips:.1f})")
if "dxhub" in med and "ohif" in med:
    print(f"- dxhub / OHIF: first image {med['ohif'][0] / med['dxhub'][0]:.2f}× faster, scrolling {med['dxhub'][1] / med['ohif'][1]:.2f}×")
EOF
cat "$RESULTS"
log "results: $RESULTS"
