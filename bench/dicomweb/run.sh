#!/usr/bin/env bash
# dxhub DICOMweb benchmark: the same data set loaded into dxhub and into Orthanc with its
# DICOMweb plugin (Debian orthanc + orthanc-dicomweb), then, against each:
#
#   1. QIDO-RS study search (the query OHIF's study list sends) with wrk, 32 connections:
#      requests/s and p99 latency;
#   2. WADO-RS /metadata of one 500-instance series: median latency of sequential requests;
#   3. WADO-RS frames (every instance of that series, /frames/1, 512x512x16-bit) with wrk,
#      32 connections: MB/s of response bodies.
#
# and prints a table with both servers, the ratios and PASS/FAIL against the targets:
# QIDO ≥ 5× Orthanc with p99 < 20 ms; frames ≥ 3× Orthanc MB/s.
#
#   bash bench/dicomweb/run.sh
#
# Environment:
#   BENCH_TARGETS    targets to run, in order (default "dxhub orthanc"; "orthanc" alone works)
#   BENCH_STUDIES    small studies besides the big series (default 20, 5 instances each)
#   BENCH_SERIES     instances of the big series (default 500)
#   BENCH_DURATION   seconds of each wrk run (default 10)
#   BENCH_CONNS      wrk connections (default 32)
#   BENCH_META_REPS  sequential /metadata requests (default 10; the median is reported)
#   BENCH_NO_BUILD   1 uses the existing target/release/dxhub (default 0)
#
# Data is generated once into bench/out/dicomweb-data (bench/ingest/gen_ct.py) and sent
# with DCMTK dcmsend (TCP_NODELAY=1). dxhub is bootstrapped with an institution, an AE
# title and a group administrator (who reads every study of the alliance; a reader sees
# only what is routed to their pools) whose session token (dxhub admin token issue) every request carries as
# `Authorization: Bearer`; Orthanc runs without authentication. Both listen on loopback
# only (Orthanc: RemoteAccessAllowed false). Not part of the test suite; needs root only
# to apt-get install what is missing.
set -euo pipefail

TARGETS=${BENCH_TARGETS:-"dxhub orthanc"}
STUDIES=${BENCH_STUDIES:-20}
SERIES_N=${BENCH_SERIES:-500}
DURATION=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNS:-32}
META_REPS=${BENCH_META_REPS:-10}
THREADS=2

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH=$(dirname "$HERE")
ROOT=$(dirname "$BENCH")
OUT=$BENCH/out
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOGDIR=$OUT/dicomweb-logs-$STAMP
mkdir -p "$LOGDIR"
RESULTS=$OUT/dicomweb-results-$STAMP.md

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- servers & cleanup
# setsid: a server's pid is its process group id; stopping the group ends its children.
SERVER_PIDS=()
stop_server() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "server $pid did not stop on SIGTERM; killing it"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]:-}"; do
        if [ -n "$pid" ]; then stop_server "$pid"; fi
    done
    rm -rf "$OUT"/dicomweb-run-*
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r _ EPHEMERAL_HI </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_HI=60999
if [ "$EPHEMERAL_HI" -lt 64000 ]; then PORT_LO=$((EPHEMERAL_HI + 1)); PORT_HI=65000; else PORT_LO=20000; PORT_HI=30000; fi
port_free() {
    ! ss -Htan "( sport = :$1 )" 2>/dev/null | grep -q . && ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
pick_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((PORT_LO + RANDOM % (PORT_HI - PORT_LO)))
        if port_free "$p"; then echo "$p"; return 0; fi
    done
    die "no free port found in $PORT_LO-$PORT_HI"
}
wait_for() { # wait_for SECONDS CMD...
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# ---------------------------------------------------------------- prerequisites
need_apt=()
command -v dcmsend >/dev/null || [ -x /usr/bin/dcmsend ] || need_apt+=(dcmtk)
command -v wrk >/dev/null || need_apt+=(wrk)
command -v curl >/dev/null || need_apt+=(curl)
command -v ss >/dev/null || need_apt+=(iproute2)
case " $TARGETS " in *" orthanc "*)
    command -v Orthanc >/dev/null || [ -x /usr/sbin/Orthanc ] || need_apt+=(orthanc)
    [ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need_apt+=(orthanc-dicomweb) ;;
esac
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
ORTHANC=$(command -v Orthanc || echo /usr/sbin/Orthanc)
DCMSEND=/usr/bin/dcmsend

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
case " $TARGETS " in *" dxhub "*)
    if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
        for attempt in 1 2 3 4 5; do
            log "cargo build --release -p dxhub (attempt $attempt)"
            if (cd "$ROOT" && cargo build --release -p dxhub) >"$LOGDIR/build.log" 2>&1; then
                break
            fi
            [ "$attempt" -lt 5 ] || { tail -30 "$LOGDIR/build.log" >&2; die "release build failed"; }
            log "build failed (the tree may be mid-edit); retrying in 60 s"
            sleep 60
        done
    fi
    [ -x "$DXHUB" ] || die "$DXHUB missing" ;;
esac

# ---------------------------------------------------------------- data
DATA=$OUT/dicomweb-data-$STUDIES-$SERIES_N
if [ ! -f "$DATA/ready" ]; then
    rm -rf "$DATA"
    mkdir -p "$DATA/files"
    log "generating $STUDIES studies of 5 CT instances and one $SERIES_N-instance CT series into $DATA"
    for i in $(seq 1 "$STUDIES"); do
        "$PY" "$BENCH/ingest/gen_ct.py" ct "$DATA/files/study-$i" 5 --dirs 1 --series 1 2>>"$LOGDIR/gen.log"
    done
    "$PY" "$BENCH/ingest/gen_ct.py" ct "$DATA/files/series" "$SERIES_N" --dirs 1 --series 1 2>>"$LOGDIR/gen.log"
    # the big series' UIDs and one frame path per instance
    "$PY" - "$DATA" <<'EOF'
import os, sys
import pydicom
data = sys.argv[1]
d = os.path.join(data, "files", "series", "0")
study = series = None
paths = []
for name in sorted(os.listdir(d)):
    ds = pydicom.dcmread(os.path.join(d, name), stop_before_pixels=True)
    study, series = ds.StudyInstanceUID, ds.SeriesInstanceUID
    paths.append(f"/studies/{study}/series/{series}/instances/{ds.SOPInstanceUID}/frames/1")
with open(os.path.join(data, "series.env"), "w") as f:
    f.write(f"SERIES_STUDY={study}\nSERIES_UID={series}\nSERIES_COUNT={len(paths)}\n")
with open(os.path.join(data, "frames.txt"), "w") as f:
    f.write("\n".join(paths) + "\n")
EOF
    touch "$DATA/ready"
fi
# shellcheck disable=SC1091
. "$DATA/series.env"
[ "$SERIES_COUNT" -eq "$SERIES_N" ] || die "$DATA: $SERIES_COUNT instances in the big series, expected $SERIES_N"
TOTAL=$(find "$DATA/files" -name '*.dcm' | wc -l)
FRAME_BYTES=$((512 * 512 * 2))

# The study search OHIF's study list sends (fuzzymatching off: Orthanc ignores it anyway).
QIDO_PATH="/studies?limit=101&offset=0&includefield=00081030%2C00080060%2C00080090%2C00100030"
FRAMES_ACCEPT='multipart/related; type="application/octet-stream"; transfer-syntax=*'

# ---------------------------------------------------------------- targets
# start_T sets SRV_PID, SRV_DIR, DIMSE_PORT, AET, BASE (DICOMweb root URL), AUTH (header value or "")
start_dxhub() {
    SRV_DIR=$OUT/dicomweb-run-dxhub; rm -rf "$SRV_DIR"; mkdir -p "$SRV_DIR"
    local d=$SRV_DIR/data a http
    for a in "alliance add B" \
             "institution add --alliance B --name H --level county" \
             "ae add --institution H --ae-title BENCH"; do
        # shellcheck disable=SC2086
        "$DXHUB" --data-dir "$d" admin $a >>"$LOGDIR/dxhub-admin.log" 2>&1 || die "dxhub admin $a failed"
    done
    printf 'Bench-password-42\n' | "$DXHUB" --data-dir "$d" admin user add --institution H \
        --login bench.admin --role group_admin --password-stdin >>"$LOGDIR/dxhub-admin.log" 2>&1 \
        || die "dxhub admin user add failed"
    local token
    token=$("$DXHUB" --data-dir "$d" admin token issue --login bench.admin --ttl 2h 2>>"$LOGDIR/dxhub-admin.log") \
        || die "dxhub admin token issue failed"
    AUTH="Bearer $token"
    DIMSE_PORT=$(pick_port)
    http=$(pick_port)
    AET=DXHUB
    # others may rebuild the binary while this runs: name the one that was started
    DXHUB_BUILT=$(date -u -r "$DXHUB" '+%Y-%m-%d %H:%M:%S UTC')
    env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE setsid "$DXHUB" --data-dir "$d" serve \
        --http "127.0.0.1:$http" --dicom "127.0.0.1:$DIMSE_PORT" \
        >"$LOGDIR/dxhub.stdout" 2>"$LOGDIR/dxhub.log" </dev/null &
    SRV_PID=$!
    SERVER_PIDS+=("$SRV_PID")
    wait_for 60 grep -q '"event":"ready"' "$LOGDIR/dxhub.stdout" || { tail "$LOGDIR/dxhub.log" >&2; die "dxhub did not get ready"; }
    BASE="http://127.0.0.1:$http/dicomweb"
}

start_orthanc() {
    SRV_DIR=$OUT/dicomweb-run-orthanc; rm -rf "$SRV_DIR"; mkdir -p "$SRV_DIR"
    local http
    DIMSE_PORT=$(pick_port)
    http=$(pick_port)
    [ "$http" != "$DIMSE_PORT" ] || http=$(pick_port)
    AET=ORTHANC
    AUTH=""
    cat >"$SRV_DIR/cfg.json" <<EOF
{
  "Name": "bench",
  "StorageDirectory": "$SRV_DIR/storage",
  "IndexDirectory": "$SRV_DIR/index",
  "HttpPort": $http,
  "DicomPort": $DIMSE_PORT,
  "DicomAet": "ORTHANC",
  "DicomAlwaysAllowStore": true,
  "DicomCheckCalledAet": false,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
  "DicomWeb": { "Enable": true, "Root": "/dicomweb/", "Host": "127.0.0.1:$http" }
}
EOF
    TCP_NODELAY=1 setsid "$ORTHANC" "$SRV_DIR/cfg.json" >"$LOGDIR/orthanc.log" 2>&1 </dev/null &
    SRV_PID=$!
    SERVER_PIDS+=("$SRV_PID")
    wait_for 60 curl -sf "http://127.0.0.1:$http/system" || { tail "$LOGDIR/orthanc.log" >&2; die "Orthanc did not get ready"; }
    BASE="http://127.0.0.1:$http/dicomweb"
}

curl_auth() { # curl_auth ARGS... (adds the Authorization header when the target has one)
    if [ -n "$AUTH" ]; then curl -H "Authorization: $AUTH" "$@"; else curl "$@"; fi
}

load_data() { # load_data TARGET
    local t=$1 i pids=() rc=0 t0 t1
    t0=$(date +%s.%N)
    TCP_NODELAY=1 "$DCMSEND" -aet BENCH -aec "$AET" 127.0.0.1 "$DIMSE_PORT" +sd +r "$DATA/files" \
        --scan-pattern 'ct*.dcm' >"$LOGDIR/dcmsend-$t.log" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    [ "$rc" -eq 0 ] || die "dcmsend to $t failed (see $LOGDIR/dcmsend-$t.log)"
    log "$t: $TOTAL instances loaded in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"
    # the archive must list all studies, with the token for dxhub
    local got
    got=$(curl_auth -sf "$BASE$QIDO_PATH" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))') \
        || die "$t: QIDO-RS $BASE$QIDO_PATH failed: $(curl_auth -s -i "$BASE$QIDO_PATH" | head -c 400)"
    [ "$got" -eq $((STUDIES + 1)) ] || die "$t: QIDO-RS lists $got studies, expected $((STUDIES + 1))"
}

# wrk_run NAME PATHS_FILE|"" URL ACCEPT: prints the RESULT line's fields as shell assignments
wrk_run() {
    local name=$1 paths=$2 url=$3 accept=$4 out=$LOGDIR/wrk-$1.txt
    WRK_PATHS="$paths" WRK_AUTH="$AUTH" WRK_ACCEPT="$accept" \
        wrk -t"$THREADS" -c"$CONNS" -d"$DURATION"s --timeout 10s -s "$HERE/wrk.lua" "$url" >"$out" 2>&1 \
        || die "wrk $name failed: $(tail -5 "$out")"
    grep '^RESULT ' "$out" | sed -e 's/^RESULT //' -e 's/ /\n/g'
}

# CPU seconds (user+system) of a process
cpu_secs() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}
# Other work (builds, tests) shares the CPUs: before each target, wait up to BENCH_IDLE_WAIT
# seconds (default 120) for them to be at most 25% busy over 2 s; then run anyway, and say so.
busy_pct() {
    local a b
    a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    sleep 2
    b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    echo "$a $b" | awk '{d = $4 - $2; printf "%d", (d > 0 ? 100 * ($3 - $1) / d : 0)}'
}
wait_quiet() {
    local deadline=$(( $(date +%s) + ${BENCH_IDLE_WAIT:-120} )) said=0
    while BUSY=$(busy_pct); [ "$BUSY" -gt 25 ]; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "WARNING: the machine is still ${BUSY}% busy; running anyway"
            return 0
        fi
        [ "$said" = 1 ] || log "machine ${BUSY}% busy with other work; waiting for it to calm down"
        said=1
    done
}

declare -A QPS P99 P50 QERR META META_MB FMBS FRPS FERR QCPU FCPU LOADS
measure() { # measure TARGET
    local t=$1 r c0 c1
    # warm up: caches, connection pools, the index's pages
    WRK_PATHS="" WRK_AUTH="$AUTH" WRK_ACCEPT="application/dicom+json" \
        wrk -t"$THREADS" -c"$CONNS" -d2s -s "$HERE/wrk.lua" "$BASE$QIDO_PATH" >/dev/null 2>&1 || true
    wait_quiet
    LOADS[$t]=$BUSY
    log "$t: QIDO-RS study search, $CONNS connections, ${DURATION}s (machine ${BUSY}% busy before)"
    c0=$(cpu_secs "$SRV_PID")
    r=$(wrk_run "qido-$t" "" "$BASE$QIDO_PATH" "application/dicom+json")
    c1=$(cpu_secs "$SRV_PID")
    local requests secs p99_ms p50_ms status_errors errors bytes
    eval "$r"
    QCPU[$t]=$(awk -v a="$c0" -v b="$c1" -v n="$requests" 'BEGIN{printf "%.2f", (n > 0 ? 1000 * (b - a) / n : 0)}')
    QPS[$t]=$(awk -v n="$requests" -v s="$secs" 'BEGIN{printf "%.0f", n/s}')
    P99[$t]=$p99_ms; P50[$t]=$p50_ms; QERR[$t]=$((status_errors + errors))

    log "$t: /metadata of the $SERIES_N-instance series, $META_REPS sequential requests"
    local url="$BASE/studies/$SERIES_STUDY/series/$SERIES_UID/metadata" i times=() code size
    code=$(curl_auth -s -o "$LOGDIR/metadata-$t.json" -w '%{http_code}' -H 'Accept: application/dicom+json' "$url")
    [ "$code" = 200 ] || die "$t: GET $url -> $code: $(head -c 300 "$LOGDIR/metadata-$t.json")"
    local n
    n=$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$LOGDIR/metadata-$t.json")
    [ "$n" -eq "$SERIES_N" ] || die "$t: /metadata returned $n instances, expected $SERIES_N"
    for i in $(seq 1 "$META_REPS"); do
        times+=("$(curl_auth -s -o /dev/null -w '%{time_total}' -H 'Accept: application/dicom+json' "$url")")
    done
    META[$t]=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.1f", 1000 * (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
    size=$(stat -c %s "$LOGDIR/metadata-$t.json")
    META_MB[$t]=$(awk -v b="$size" 'BEGIN{printf "%.2f", b/1e6}')

    # one frame must come back whole before timing them all
    local first
    first=$(head -n 1 "$DATA/frames.txt")
    code=$(curl_auth -s -o "$LOGDIR/frame-$t.bin" -w '%{http_code}' -H "Accept: $FRAMES_ACCEPT" "$BASE$first")
    size=$(stat -c %s "$LOGDIR/frame-$t.bin")
    [ "$code" = 200 ] && [ "$size" -ge "$FRAME_BYTES" ] \
        || die "$t: GET $BASE$first -> $code, $size bytes: $(head -c 300 "$LOGDIR/frame-$t.bin" | tr -c '[:print:]\n' '.')"
    log "$t: WADO-RS frames of $SERIES_N instances, $CONNS connections, ${DURATION}s"
    c0=$(cpu_secs "$SRV_PID")
    r=$(wrk_run "frames-$t" "$DATA/frames.txt" "$BASE" "$FRAMES_ACCEPT")
    c1=$(cpu_secs "$SRV_PID")
    eval "$r"
    FCPU[$t]=$(awk -v a="$c0" -v b="$c1" -v n="$requests" 'BEGIN{printf "%.2f", (n > 0 ? 1000 * (b - a) / n : 0)}')
    FMBS[$t]=$(awk -v b="$bytes" -v s="$secs" 'BEGIN{printf "%.1f", b/1e6/s}')
    FRPS[$t]=$(awk -v n="$requests" -v s="$secs" 'BEGIN{printf "%.0f", n/s}')
    FERR[$t]=$((status_errors + errors))
}

for t in $TARGETS; do
    "start_$t"
    log "$t: DICOMweb at $BASE"
    load_data "$t"
    measure "$t"
    stop_server "$SRV_PID"
done

# ---------------------------------------------------------------- report
ratio() { # ratio A B (A/B, or - when either is missing)
    if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (b > 0 ? a/b : 0)}'; else echo -; fi
}
{
    echo "dxhub DICOMweb benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
    echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/Mem:/{print $2}') GiB RAM; client and servers share it"
    echo "data: $STUDIES studies x 5 + 1 series x $SERIES_N CT instances (512x512x16-bit, Explicit VR LE), $TOTAL instances"
    echo "load: wrk -t$THREADS -c$CONNS -d${DURATION}s on loopback; dxhub with Authorization: Bearer (session token), Orthanc $("$ORTHANC" --version 2>/dev/null | head -n1 | awk '{print $NF}') + DICOMweb plugin without auth"
    case " $TARGETS " in *" dxhub "*)
        echo "dxhub binary: $DXHUB, built $DXHUB_BUILT" ;;
    esac
    echo "CPU busy (all processes) in the 2 s before each target: $(for t in $TARGETS; do printf '%s %s%% ' "$t" "${LOADS[$t]}"; done)"
    echo
    echo "| target | QIDO req/s | QIDO p50 ms | QIDO p99 ms | QIDO errors | server CPU ms/QIDO | /metadata ms ($SERIES_N inst., median of $META_REPS) | /metadata MB | frames MB/s | frames req/s | frame errors | server CPU ms/frame |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for t in $TARGETS; do
        echo "| $t | ${QPS[$t]} | ${P50[$t]} | ${P99[$t]} | ${QERR[$t]} | ${QCPU[$t]} | ${META[$t]} | ${META_MB[$t]} | ${FMBS[$t]} | ${FRPS[$t]} | ${FERR[$t]} | ${FCPU[$t]} |"
    done
    if [ -n "${QPS[dxhub]:-}" ] && [ -n "${QPS[orthanc]:-}" ]; then
        q=$(ratio "${QPS[dxhub]}" "${QPS[orthanc]}")
        m=$(ratio "${META[orthanc]}" "${META[dxhub]}")
        f=$(ratio "${FMBS[dxhub]}" "${FMBS[orthanc]}")
        echo "| dxhub / Orthanc | ${q}× | | | | | ${m}× faster | | ${f}× | | | |"
        echo
        awk -v r="$q" -v p="${P99[dxhub]}" -v e="${QERR[dxhub]}" 'BEGIN{exit !(r >= 5 && p < 20 && e == 0)}' && v=PASS || v=FAIL
        echo "$v: QIDO-RS ≥ 5× Orthanc with p99 < 20 ms (measured ${q}×, p99 ${P99[dxhub]} ms, ${QERR[dxhub]} errors)"
        awk -v r="$f" -v e="${FERR[dxhub]}" 'BEGIN{exit !(r >= 3 && e == 0)}' && v=PASS || v=FAIL
        echo
        echo "$v: WADO-RS frames ≥ 3× Orthanc MB/s (measured ${f}×, ${FERR[dxhub]} errors)"
        echo
        echo "(no target) /metadata of $SERIES_N instances: dxhub ${META[dxhub]} ms, Orthanc ${META[orthanc]} ms"
    else
        echo
        echo "(ratios and PASS/FAIL need both dxhub and orthanc in BENCH_TARGETS)"
    fi
} >"$RESULTS"
cat "$RESULTS"
log "results in $RESULTS, logs in $LOGDIR"
