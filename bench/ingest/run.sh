#!/usr/bin/env bash
# dxhub ingest benchmark: the same N CT instances sent with DCMTK dcmsend over 4 parallel
# associations to dxhub (default config), Orthanc (Debian package, SQLite index) and DCMTK
# storescp (plain files); then the peak RSS of dxhub while receiving one ~1 GB instance.
#
#   bash bench/ingest/run.sh [N]          (default N=2000)
#
# Environment:
#   BENCH_TARGETS   targets to run, in order (default "dxhub orthanc storescp")
#   BENCH_REPEAT    runs per target, interleaved; the median is reported (default 1)
#   BENCH_RSS       0 skips the 1 GB peak-RSS test (default 1)
#   BENCH_FRAMES    frames of the big instance, 512x512x16-bit each (default 2000 = 1 GB)
#   BENCH_PERF      1 records a perf profile (DWARF call graphs) of dxhub during its first
#                   run into the log directory (default 0; it slows that run down)
#   BENCH_NO_BUILD  1 uses the existing target/release/dxhub (default 0)
#   BENCH_DXHUB     another dxhub binary (default target/release/dxhub)
#   BENCH_REMOVAL_WAIT seconds after the last removal of benchmark files (default 370)
#   BENCH_KEEP      1 keeps the runs' storage (renamed to bench/out/kept-*) instead of
#                   removing it, so that the next run need not wait (default 0)
#   BENCH_DROP_CACHES 1 (as root) drops the page cache before each run and reads the
#                   load back (default 1)
#   BENCH_IDLE_WAIT seconds to wait, before each run, for other work to leave the CPUs at
#                   most 25% busy (default 180; then it runs anyway and says so)
#
# Not part of the test suite; it needs root only to apt-get install dcmtk/orthanc.
set -euo pipefail

N=${1:-2000}
PARALLEL=4
TARGETS=${BENCH_TARGETS:-"dxhub orthanc storescp"}
REPEAT=${BENCH_REPEAT:-1}
RSS_TEST=${BENCH_RSS:-1}
FRAMES=${BENCH_FRAMES:-2000}
PERF=${BENCH_PERF:-0}
RSS_LIMIT_MB=300

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH=$(dirname "$HERE")
ROOT=$(dirname "$BENCH")
OUT=$BENCH/out
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOGDIR=$OUT/logs-$STAMP
mkdir -p "$LOGDIR"
RESULTS=$OUT/results-$STAMP.md

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- servers & cleanup
# Every server is started with setsid, so its pid is also its process group id: stopping
# it by that id also ends the children it forked (storescp --fork).
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
    local keep=() p
    for p in "${SERVER_PIDS[@]:-}"; do
        if [ -n "$p" ] && [ "$p" != "$pid" ]; then keep+=("$p"); fi
    done
    SERVER_PIDS=("${keep[@]:-}")
}
cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]:-}"; do
        if [ -n "$pid" ]; then stop_server "$pid"; fi
    done
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ports outside the kernel's ephemeral range (the senders' own ports and TIME_WAIT leftovers
# live there), free in every TCP state.
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
command -v dcmsend >/dev/null && command -v storescp >/dev/null && command -v dcmdump >/dev/null || need_apt+=(dcmtk)
command -v Orthanc >/dev/null || [ -x /usr/sbin/Orthanc ] || need_apt+=(orthanc)
command -v curl >/dev/null || need_apt+=(curl)
command -v ss >/dev/null || need_apt+=(iproute2)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
ORTHANC=$(command -v Orthanc || echo /usr/sbin/Orthanc)
# a Python venv's pynetdicom scripts can shadow DCMTK's names: call DCMTK by path
DCMSEND=/usr/bin/dcmsend
STORESCP=/usr/bin/storescp

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

DXHUB=${BENCH_DXHUB:-${CARGO_TARGET_DIR:-$ROOT/target}/release/dxhub}
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
case " $TARGETS $RSS_TEST " in
    *" dxhub "*|*" 1 ") [ -x "$DXHUB" ] || die "$DXHUB missing" ;;
esac

# ---------------------------------------------------------------- data
CT=$OUT/ct-$N
if [ ! -d "$CT" ]; then
    log "generating $N CT instances into $CT"
    "$PY" "$HERE/gen_ct.py" ct "$CT" "$N" --dirs "$PARALLEL"
fi
COUNT=$(find "$CT" -type f -name '*.dcm' | wc -l)
[ "$COUNT" -eq "$N" ] || die "$CT holds $COUNT files, expected $N (remove it to regenerate)"
BYTES=$(find "$CT" -type f -name '*.dcm' -printf '%s\n' | awk '{s+=$1} END {printf "%d", s}')

BIG=$OUT/multiframe-$FRAMES.dcm
if [ "$RSS_TEST" = 1 ] && [ ! -f "$BIG" ]; then
    log "generating the $FRAMES-frame instance $BIG"
    "$PY" "$HERE/gen_ct.py" big "$BIG" --frames "$FRAMES"
fi

# ---------------------------------------------------------------- targets
# Each start_* sets SRV_PID, SRV_PORT, SRV_AET, SRV_DIR; count_* prints the stored count.
RUN_SEQ=0
fresh_dir() { RUN_SEQ=$((RUN_SEQ + 1)); SRV_DIR=$OUT/run-$1; rm -rf "$SRV_DIR"; mkdir -p "$SRV_DIR"; }
# ext4 without a journal (this VM's disk) skips recently freed inodes when it allocates new
# ones (`recently_deleted` in fs/ext4/ialloc.c: freed less than 60 s ago, or 360 s when the
# inode table block is dirty, which a server creating files keeps it): creating files within
# minutes of thousands being deleted costs much kernel time (seen as 16-40% of dxhub's
# profile). So storage of the runs is kept until the end, and a run starts at least
# BENCH_REMOVAL_WAIT (370 s) after the last removal of benchmark files (also bench/ecg's).
CLEANED=$OUT/.last-removal
remove_runs() {
    if compgen -G "$OUT/run-*" >/dev/null; then
        if [ "${BENCH_KEEP:-0}" = 1 ]; then
            # renamed, not removed: no inodes freed (remove bench/out/kept-* yourself later)
            local d
            for d in "$OUT"/run-*; do mv "$d" "$OUT/kept-$STAMP-$(basename "$d")"; done
            return
        fi
        rm -rf "$OUT"/run-*
        sync
        date +%s >"$CLEANED"
    fi
}
remove_runs
for f in "$CLEANED" "$OUT/.ecg-last-removal"; do
    [ -f "$f" ] || continue
    wait_s=$(( $(cat "$f") + ${BENCH_REMOVAL_WAIT:-370} - $(date +%s) ))
    if [ "$wait_s" -gt 0 ]; then
        log "waiting ${wait_s} s after the removal of earlier benchmark files (ext4 inode reuse)"
        sleep "$wait_s"
    fi
done

start_dxhub() {
    fresh_dir dxhub
    local d=$SRV_DIR/data a
    for a in "alliance add B" \
             "institution add --alliance B --name H --level county" \
             "ae add --institution H --ae-title BENCH"; do
        # shellcheck disable=SC2086
        "$DXHUB" --data-dir "$d" admin $a >>"$LOGDIR/dxhub-admin.log" 2>&1 || die "dxhub admin $a failed"
    done
    SRV_PORT=$(pick_port)
    SRV_AET=DXHUB
    local ready=$LOGDIR/dxhub-$RUN_SEQ.stdout
    # RUST_BACKTRACE is unset: with it set, every error value that carries a std Backtrace
    # captures one (see bench/README.md); a production hub runs without it.
    env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE setsid "$DXHUB" --data-dir "$d" serve --http 127.0.0.1:0 --dicom "127.0.0.1:$SRV_PORT" \
        >"$ready" 2>"$LOGDIR/dxhub-$RUN_SEQ.log" </dev/null &
    SRV_PID=$!
    SERVER_PIDS+=("$SRV_PID")
    wait_for 60 grep -q '"event":"ready"' "$ready" || { tail "$LOGDIR/dxhub-$RUN_SEQ.log" >&2; die "dxhub did not get ready"; }
}
count_dxhub() {
    "$PY" - "$SRV_DIR/data/index.sqlite" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
print(c.execute("SELECT COUNT(*) FROM instances").fetchone()[0])
EOF
}

start_orthanc() {
    fresh_dir orthanc
    SRV_PORT=$(pick_port)
    ORTHANC_HTTP=$(pick_port)
    [ "$ORTHANC_HTTP" != "$SRV_PORT" ] || ORTHANC_HTTP=$(pick_port)
    SRV_AET=ORTHANC
    cat >"$SRV_DIR/cfg.json" <<EOF
{
  "Name": "bench",
  "StorageDirectory": "$SRV_DIR/storage",
  "IndexDirectory": "$SRV_DIR/index",
  "HttpPort": $ORTHANC_HTTP,
  "DicomPort": $SRV_PORT,
  "DicomAet": "ORTHANC",
  "DicomAlwaysAllowStore": true,
  "DicomCheckCalledAet": false,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "Plugins": []
}
EOF
    TCP_NODELAY=1 setsid "$ORTHANC" "$SRV_DIR/cfg.json" >"$LOGDIR/orthanc-$RUN_SEQ.log" 2>&1 </dev/null &
    SRV_PID=$!
    SERVER_PIDS+=("$SRV_PID")
    wait_for 60 curl -sf "http://127.0.0.1:$ORTHANC_HTTP/system" || { tail "$LOGDIR/orthanc-$RUN_SEQ.log" >&2; die "Orthanc did not get ready"; }
}
count_orthanc() {
    curl -sf "http://127.0.0.1:$ORTHANC_HTTP/statistics" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["CountInstances"])'
}

start_storescp() {
    fresh_dir storescp
    mkdir -p "$SRV_DIR/files"
    SRV_PORT=$(pick_port)
    SRV_AET=STORESCP
    TCP_NODELAY=1 setsid "$STORESCP" --fork -aet STORESCP -od "$SRV_DIR/files" "$SRV_PORT" \
        >"$LOGDIR/storescp-$RUN_SEQ.log" 2>&1 </dev/null &
    SRV_PID=$!
    SERVER_PIDS+=("$SRV_PID")
    wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SRV_PORT" || die "storescp did not listen"
}
count_storescp() { find "$SRV_DIR/files" -type f | wc -l; }

# CPU seconds (user+system, including reaped children) of a process
cpu_secs() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13 + $14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# the PARALLEL senders, each with its share of the files; fails if any of them failed
send_all() {
    local t=$1 rep=$2 i pids=() rc=0
    for i in $(seq 0 $((PARALLEL - 1))); do
        TCP_NODELAY=1 "$DCMSEND" -aet BENCH -aec "$SRV_AET" 127.0.0.1 "$SRV_PORT" +sd "$CT/$i" \
            >"$LOGDIR/dcmsend-$t-$rep-$i.log" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || rc=$?; done
    return "$rc"
}

# Other work on the machine (builds, tests) competes for its few CPUs: before each run,
# wait up to BENCH_IDLE_WAIT seconds (default 180) for the CPUs to be at most 25% busy over 2 s.
busy_pct() {
    local a b
    a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    sleep 2
    b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    echo "$a $b" | awk '{d = $4 - $2; printf "%d", (d > 0 ? 100 * ($3 - $1) / d : 0)}'
}
wait_quiet() {
    local deadline=$(( $(date +%s) + ${BENCH_IDLE_WAIT:-180} )) said=0
    while BUSY=$(busy_pct); [ "$BUSY" -gt 25 ]; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "WARNING: the machine is still ${BUSY}% busy; running anyway"
            return 0
        fi
        [ "$said" = 1 ] || log "machine ${BUSY}% busy with other work; waiting for it to calm down"
        said=1
    done
}

declare -A SECS CPU SCPU
LOADS=""
run_once() { # run_once TARGET REP
    local t=$1 rep=$2 i rc=0 t0 t1 c0 c1 got perf_pid=""
    sync
    if [ "${BENCH_DROP_CACHES:-1}" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; then
        # every run starts from the same memory state: on this VM dxhub's runs slowed from
        # ~2.9 s to 3.5-4.5 s as earlier runs filled the page cache, and were fast again
        # after a drop; the load is read back so that the senders find it cached
        echo 3 >/proc/sys/vm/drop_caches
        cat "$CT"/*/*.dcm >/dev/null
    fi
    wait_quiet
    LOADS+="$BUSY% "
    "start_$t"
    c0=$(cpu_secs "$SRV_PID")
    if [ "$PERF" = 1 ] && [ "$t" = dxhub ] && [ "$rep" = 1 ] && command -v perf >/dev/null; then
        perf record -F 250 --call-graph dwarf,16384 -o "$LOGDIR/perf-dxhub.data" -p "$SRV_PID" >/dev/null 2>&1 &
        perf_pid=$!
        sleep 0.5
    fi
    log "$t run $rep (machine ${BUSY}% busy before): sending $N instances over $PARALLEL associations to port $SRV_PORT"
    t0=$(date +%s.%N)
    local TIMEFORMAT='%U %S'
    { time send_all "$t" "$rep"; } 2>"$LOGDIR/sender-cpu-$t-$rep.txt" || rc=$?
    t1=$(date +%s.%N)
    if [ -n "$perf_pid" ]; then kill -INT "$perf_pid" 2>/dev/null || true; wait "$perf_pid" 2>/dev/null || true; fi
    [ "$rc" -eq 0 ] || log "WARNING: a dcmsend exited with status $rc (see $LOGDIR/dcmsend-$t-$rep-*.log)"
    got=0
    # storescp --fork children may still be closing their last file
    for i in $(seq 1 50); do
        got=$("count_$t" || echo 0)
        [ "$got" -ge "$N" ] && break
        sleep 0.2
    done
    c1=$(cpu_secs "$SRV_PID")
    stop_server "$SRV_PID"
    [ "$got" -eq "$N" ] || die "$t stored $got instances, expected $N"
    SECS[$t]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}') "
    CPU[$t]+="$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}') "
    SCPU[$t]+="$(awk '{printf "%.2f", $1 + $2}' "$LOGDIR/sender-cpu-$t-$rep.txt") "
    log "$t run $rep: $got stored in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s"
    mv "$SRV_DIR" "$SRV_DIR-$rep"
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
span() { tr ' ' '\n' | grep . | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%s-%s", lo, hi}'; }

for rep in $(seq 1 "$REPEAT"); do
    for t in $TARGETS; do run_once "$t" "$rep"; done
done

# ---------------------------------------------------------------- report
{
    echo "dxhub ingest benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
    echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/Mem:/{print $2}') GiB RAM, kernel $(uname -r)"
    echo "load: $N CT instances, 512x512x16-bit, Explicit VR LE, $(awk -v b="$BYTES" 'BEGIN{printf "%.1f", b/1e6}') MB; $PARALLEL parallel dcmsend associations on loopback, TCP_NODELAY=1; runs per target: $REPEAT (median)"
    echo "CPU busy (all processes) in the 2 s before each run: $LOADS(other work on the machine shares its $(nproc) CPUs)"
    echo
    echo "| target | instances | seconds | instances/s | MB/s | server CPU s | senders' CPU s | vs Orthanc | vs storescp |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
} >"$RESULTS"
declare -A IPS
for t in $TARGETS; do
    s=$(echo "${SECS[$t]}" | median)
    IPS[$t]=$(awk -v n="$N" -v s="$s" 'BEGIN{printf "%.1f", n/s}')
done
for t in $TARGETS; do
    s=$(echo "${SECS[$t]}" | median)
    cpu=$(echo "${CPU[$t]}" | median)
    scpu=$(echo "${SCPU[$t]}" | median)
    [ "$REPEAT" -gt 1 ] && s_show="$s ($(echo "${SECS[$t]}" | span))" || s_show=$s
    mbs=$(awk -v b="$BYTES" -v s="$s" 'BEGIN{printf "%.1f", b/1e6/s}')
    vo=$( [ -n "${IPS[orthanc]:-}" ] && awk -v a="${IPS[$t]}" -v b="${IPS[orthanc]}" 'BEGIN{printf "%.2f×", a/b}' || echo -)
    vs=$( [ -n "${IPS[storescp]:-}" ] && awk -v a="${IPS[$t]}" -v b="${IPS[storescp]}" 'BEGIN{printf "%.2f×", a/b}' || echo -)
    [ "$t" = storescp ] && cpu="$cpu*"
    echo "| $t | $N | $s_show | ${IPS[$t]} | $mbs | $cpu | $scpu | $vo | $vs |" >>"$RESULTS"
done
{
    echo
    case " $TARGETS " in *" storescp "*)
        echo "\\* storescp --fork: CPU of the children the parent has reaped only (a lower bound)." ;;
    esac
    if [ -n "${IPS[dxhub]:-}" ] && [ -n "${IPS[orthanc]:-}" ]; then
        r=$(awk -v a="${IPS[dxhub]}" -v b="${IPS[orthanc]}" 'BEGIN{printf "%.2f", a/b}')
        awk -v r="$r" 'BEGIN{exit !(r >= 4)}' && v=PASS || v=FAIL
        echo
        echo "$v: dxhub ≥ 4× Orthanc (measured ${r}×)"
    fi
    if [ -n "${IPS[dxhub]:-}" ] && [ -n "${IPS[storescp]:-}" ]; then
        r=$(awk -v a="${IPS[dxhub]}" -v b="${IPS[storescp]}" 'BEGIN{printf "%.2f", a/b}')
        awk -v r="$r" 'BEGIN{exit !(r >= 0.7)}' && v=PASS || v=FAIL
        echo
        echo "$v: dxhub ≥ 0.7× storescp (measured ${r}×)"
    fi
} >>"$RESULTS"

# ---------------------------------------------------------------- peak RSS, one ~1 GB instance
if [ "$RSS_TEST" = 1 ]; then
    BIG_BYTES=$(stat -c %s "$BIG")
    start_dxhub
    hwm0=$(awk '/VmHWM/{print $2}' "/proc/$SRV_PID/status")
    log "RSS test: sending $BIG ($((BIG_BYTES / 1000000)) MB) to dxhub (pid $SRV_PID, VmHWM at start ${hwm0} kB)"
    # sample VmRSS while it runs, for the log
    ( while kill -0 "$SRV_PID" 2>/dev/null; do
          awk -v t="$(date +%s.%N)" '/VmRSS/{print t, $2}' "/proc/$SRV_PID/status" 2>/dev/null || true
          sleep 0.5
      done ) >"$LOGDIR/dxhub-rss-samples.txt" &
    sampler=$!
    t0=$(date +%s.%N)
    rc=0
    TCP_NODELAY=1 "$DCMSEND" -aet BENCH -aec DXHUB 127.0.0.1 "$SRV_PORT" "$BIG" >"$LOGDIR/dcmsend-big.log" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    hwm=$(awk '/VmHWM/{print $2}' "/proc/$SRV_PID/status")
    got=$(count_dxhub || echo 0)
    stored=$("$PY" - "$SRV_DIR/data/index.sqlite" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
r = c.execute("SELECT size_bytes, number_of_frames FROM instances").fetchone()
print(f"{r[0]} {r[1]}" if r else "0 0")
EOF
)
    blob=$(find "$SRV_DIR/data/blobs" -type f -printf '%s\n' 2>/dev/null | sort -n | tail -1)
    stop_server "$SRV_PID"
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    mv "$SRV_DIR" "$SRV_DIR-rss"
    hwm_mb=$(awk -v k="$hwm" 'BEGIN{printf "%.1f", k/1024}')
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
    awk -v m="$hwm_mb" -v l="$RSS_LIMIT_MB" 'BEGIN{exit !(m < l)}' && v=PASS || v=FAIL
    # the stored object carries dxhub's own file meta, so compare with the pixel data size
    [ "$rc" -eq 0 ] && [ "$got" -eq 1 ] && [ "${blob:-0}" -gt $((FRAMES * 512 * 512 * 2)) ] || v=FAIL
    {
        echo
        echo "Peak RSS of dxhub receiving one $FRAMES-frame instance ($(awk -v b="$BIG_BYTES" 'BEGIN{printf "%.1f", b/1e6}') MB, Multi-frame Grayscale Word SC, uncompressed):"
        echo "VmHWM ${hwm_mb} MiB (at start $(awk -v k="$hwm0" 'BEGIN{printf "%.1f", k/1024}') MiB); transfer ${secs} s, $(awk -v b="$BIG_BYTES" -v s="$secs" 'BEGIN{printf "%.1f", b/1e6/s}') MB/s; dcmsend status $rc; index rows $got (size_bytes, frames: $stored); largest blob ${blob:-0} bytes"
        echo
        echo "$v: dxhub peak RSS < $RSS_LIMIT_MB MB while receiving the $(awk -v b="$BIG_BYTES" 'BEGIN{printf "%.0f", b/1e6}') MB instance"
    } >>"$RESULTS"
fi

remove_runs
echo
cat "$RESULTS"
echo
echo "(results: $RESULTS, logs: $LOGDIR)"
