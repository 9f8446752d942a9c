#!/usr/bin/env bash
# dxhub ECG benchmark (issue #5 targets):
#   1. parse + analyse + render of a 10 s, 12-lead, 500 Hz ECG: median < 5 ms
#      (example `ecg_pipeline`, in process; plus an SCP-ECG and an HL7 aECG written by
#      biosig's save2gdf from pydicom's waveform_ecg.dcm when those tools are here);
#   2. upload-to-stored-and-analysed: p99 < 100 ms with 20 devices uploading at once
#      (example `ecg_load` against a release `dxhub serve` with default settings: SQLite,
#      local object store).
#
#   bash bench/ecg/run.sh [UPLOADS_PER_DEVICE]     (default 25 → 500 uploads)
#
# Environment: BENCH_DEVICES (default 20), BENCH_NO_BUILD=1 (use existing release binaries),
# BENCH_DXHUB=PATH (another dxhub binary, e.g. an older build to compare with),
# BENCH_PERF=1 (perf profile of the hub during the load, in the log directory;
# BENCH_PERF_CG=dwarf,32768 for DWARF call graphs, default frame pointers),
# BENCH_PERF_STAT=1 (software counters of the hub per upload: context switches),
# BENCH_KEEP=1 (keep the hub's data), BENCH_REMOVAL_WAIT (seconds after the last removal
# of benchmark files before a run starts, default 370; see below).
# QRS accuracy is a separate script: bench/ecg/qrs_accuracy.sh.
set -euo pipefail

PER=${1:-25}
DEVICES=${BENCH_DEVICES:-20}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$ROOT/bench/out
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOGDIR=$OUT/ecg-logs-$STAMP
CLEANED=$OUT/.ecg-last-removal
RESULTS=$OUT/ecg-results-$STAMP.md
mkdir -p "$LOGDIR"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SRV_PID=""
WORK=""
cleanup() {
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill -TERM -- "-$SRV_PID" 2>/dev/null || kill -TERM "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
    fi
    if [ -n "$WORK" ]; then
        if [ "${BENCH_KEEP:-0}" = 1 ]; then
            log "kept the hub's data: $WORK"
        else
            rm -rf "$WORK"
            date +%s >"$CLEANED"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r _ EPHEMERAL_HI </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_HI=60999
if [ "$EPHEMERAL_HI" -lt 64000 ]; then PORT_LO=$((EPHEMERAL_HI + 1)); PORT_HI=65000; else PORT_LO=20000; PORT_HI=30000; fi
pick_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((PORT_LO + RANDOM % (PORT_HI - PORT_LO)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    die "no free port"
}
wait_for() { # wait_for SECONDS CMD...
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    log "building release binaries …"
    (cd "$ROOT" && cargo build --release -q -p dxhub \
        && cargo build --release -q -p dxhub-ecg --example ecg_pipeline \
        && cargo build --release -q -p dxhub-e2e --example ecg_load)
fi
DXHUB=${BENCH_DXHUB:-$TARGET/release/dxhub}
PIPELINE=$TARGET/release/examples/ecg_pipeline
LOAD=$TARGET/release/examples/ecg_load
# ext4 without a journal (this VM's disk) skips recently freed inodes when it allocates new
# ones (`recently_deleted` in fs/ext4/ialloc.c: an inode freed less than 60 s ago, or 360 s
# when its inode table block is dirty, which a hub creating files keeps it), reading each
# one's inode table entry. A hub that creates its files within minutes of an earlier run
# removing thousands spends a fifth of its CPU or more there (seen in perf as
# `find_inode_bit`/`recently_deleted`). So a run starts at least BENCH_REMOVAL_WAIT (370 s)
# after the last removal of benchmark files (this script's and bench/ingest's);
# BENCH_KEEP=1 keeps this run's data instead of removing it (remove it yourself later).
REMOVAL_WAIT=${BENCH_REMOVAL_WAIT:-370}
for f in "$CLEANED" "$ROOT/bench/out/.last-removal"; do
    [ -f "$f" ] || continue
    wait_s=$(( $(cat "$f") + REMOVAL_WAIT - $(date +%s) ))
    if [ "$wait_s" -gt 0 ]; then
        log "waiting ${wait_s} s after the removal of earlier benchmark files (ext4 inode reuse)"
        sleep "$wait_s"
    fi
done
WORK=$(mktemp -d)

{
    echo "# dxhub ECG benchmark $STAMP"
    echo
    echo "Machine: $(nproc) cores, $(uname -sr); dxhub $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')."
    echo
    echo "## Parse + analyse + render (in process, release, 300 runs each)"
    echo
} >"$RESULTS"

# third-party inputs: SCP-ECG and HL7 aECG written by biosig from pydicom's waveform_ecg.dcm
extra=()
PY=${DXHUB_TEST_PYTHON:-$ROOT/.venv/bin/python}
DCM=${DXHUB_TEST_CORPUS:-$TARGET/test-corpus}/pydicom/waveform_ecg.dcm
if command -v save2gdf >/dev/null && [ -x "$PY" ] && [ -f "$DCM" ]; then
    if "$PY" "$ROOT/tests/py/aecg_peer.py" edf "$DCM" "$WORK/ecg.edf" --decimate 2 >/dev/null 2>"$LOGDIR/edf.log"; then
        save2gdf -f=SCP3 "$WORK/ecg.edf" "$WORK/biosig.scp" >/dev/null 2>&1 && extra+=("$WORK/biosig.scp")
        save2gdf -f=HL7aECG "$WORK/ecg.edf" "$WORK/biosig.xml" >/dev/null 2>&1 && extra+=("$WORK/biosig.xml")
    fi
else
    log "no save2gdf / venv / corpus: only the synthetic inputs are measured"
fi
"$PIPELINE" 300 "${extra[@]}" | sed "s#$WORK/##" | tee -a "$RESULTS"
pipeline_median=$(grep 'synthetic JSON form' "$RESULTS" | sed -E 's/.*\*\*([0-9.]+)\*\*.*/\1/')

# the hub: one county hospital, one township, DEVICES village clinics with a device each
D=$WORK/data
"$DXHUB" --data-dir "$D" admin alliance add 基准医共体 >>"$LOGDIR/admin.log" 2>&1
"$DXHUB" --data-dir "$D" admin institution add --alliance 基准医共体 --name H --level county >>"$LOGDIR/admin.log" 2>&1
"$DXHUB" --data-dir "$D" admin institution add --alliance 基准医共体 --name T --level township --parent H >>"$LOGDIR/admin.log" 2>&1
: >"$WORK/tokens"
for i in $(seq 1 "$DEVICES"); do
    "$DXHUB" --data-dir "$D" admin institution add --alliance 基准医共体 --name "V$i" --level village --parent T >>"$LOGDIR/admin.log" 2>&1
    "$DXHUB" --data-dir "$D" admin device add --institution "V$i" --serial "BENCH-ECG-$i" 2>>"$LOGDIR/admin.log" >>"$WORK/tokens"
done
http=$(pick_port); dicom=$(pick_port)
env -u RUST_BACKTRACE setsid "$DXHUB" --data-dir "$D" serve --http "127.0.0.1:$http" --dicom "127.0.0.1:$dicom" \
    >"$LOGDIR/dxhub.stdout" 2>"$LOGDIR/dxhub.log" </dev/null &
SRV_PID=$!
wait_for 60 grep -q '"event":"ready"' "$LOGDIR/dxhub.stdout" || { tail "$LOGDIR/dxhub.log" >&2; die "dxhub did not get ready"; }
log "warm-up: one upload per device"
"$LOAD" "http://127.0.0.1:$http" "$WORK/tokens" 1 1 >/dev/null
# bursts: every device sends one ECG at the same moment (5 rounds, new ECGs each)
burst_p99=()
for r in 2 3 4 5 6; do
    b=$("$LOAD" "http://127.0.0.1:$http" "$WORK/tokens" 1 "$r")
    burst_p99+=("$(echo "$b" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["p99_ms"],1))')")
    sleep 1
done
burst_worst=$(printf '%s\n' "${burst_p99[@]}" | sort -g | tail -1)
log "$DEVICES devices × $PER uploads …"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SRV_PID/stat"; }
ticks0=$(cpu_ticks)
if [ "${BENCH_PERF:-0}" = 1 ]; then
    perf record -F 999 --call-graph "${BENCH_PERF_CG:-fp}" -p "$SRV_PID" -o "$LOGDIR/perf.data" >/dev/null 2>&1 &
    PERF_PID=$!
    sleep 0.5
fi
if [ "${BENCH_PERF_STAT:-0}" = 1 ]; then
    perf stat -e instructions:u,instructions:k,context-switches -p "$SRV_PID" -o "$LOGDIR/perf-stat.txt" >/dev/null 2>&1 &
    STAT_PID=$!
    sleep 0.5
fi
result=$("$LOAD" "http://127.0.0.1:$http" "$WORK/tokens" "$PER" 7)
if [ "${BENCH_PERF_STAT:-0}" = 1 ]; then
    kill -INT "$STAT_PID"; wait "$STAT_PID" 2>/dev/null || true
    awk -v n=$((DEVICES * PER)) '/instructions|context-switches/ && $1 !~ /^</ {gsub(",","",$1); printf "perf stat: %s per upload: %.0f\n", $2, $1/n}' "$LOGDIR/perf-stat.txt" | tee -a "$RESULTS"
fi
if [ "${BENCH_PERF:-0}" = 1 ]; then
    kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true
    log "perf profile: $LOGDIR/perf.data"
fi
ticks1=$(cpu_ticks)
cpu_ms=$(python3 -c "print(round(($ticks1 - $ticks0) * 1000 / $(getconf CLK_TCK) / ($DEVICES * $PER), 2))")
p99=$(echo "$result" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["p99_ms"],1))')
{
    echo
    echo "## Upload to stored, indexed and analysed ($DEVICES devices)"
    echo
    echo "JSON form, 10 s, 8 leads sent (I, II, V1–V6), 500 Hz."
    echo
    echo "Bursts (all $DEVICES devices send one ECG at the same moment; 5 rounds): p99 per round ${burst_p99[*]} ms."
    echo
    echo "Sustained ($PER uploads per device; each device sends its next ECG when the 201 arrives):"
    echo
    echo '```'
    echo "$result"
    echo '```'
    echo
    echo "dxhub CPU time per upload: ${cpu_ms} ms (user + system, all threads)."
    echo
    verdict() { if python3 -c "import sys; sys.exit(0 if $1 else 1)"; then echo PASS; else echo FAIL; fi; }
    echo "- parse + analyse + render median ${pipeline_median} ms (target < 5 ms): $(verdict "$pipeline_median < 5")"
    echo "- upload p99, $DEVICES devices in a burst: worst round ${burst_worst} ms (target < 100 ms): $(verdict "$burst_worst < 100")"
    echo "- upload p99, $DEVICES devices sending back to back: ${p99} ms (target < 100 ms): $(verdict "$p99 < 100")"
} | tee -a "$RESULTS"
log "results: $RESULTS"
