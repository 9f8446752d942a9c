#!/usr/bin/env bash
# dxhub worklist benchmark (issue #6 targets), on SQLite and on PostgreSQL:
#   1. POST /api/v1/worklist/next (claim the next item) p99 < 10 ms with 100,000 open items;
#   2. GET /api/v1/worklist?tab=queue&pool_id=… (one pool's queue, 50 a page) p99 < 20 ms.
#
#   bash bench/worklist/run.sh [ITEMS]          (default 100000)
#
# A release `dxhub serve` (default settings) per database; ITEMS queued work items are
# bulk-inserted by SQL (example `worklist_bench seed`) before it starts, then
# `worklist_bench run` makes BENCH_CLAIMS sequential claims (the readers taking turns) and
# BENCH_LISTS sequential queue queries over HTTP.
#
# Environment: BENCH_DBS ("sqlite postgres"), BENCH_READERS (10), BENCH_CLAIMS (2000),
# BENCH_LISTS (1000), BENCH_NO_BUILD=1 (use existing release binaries), CARGO_TARGET_DIR,
# DXHUB_TEST_PG_URL (a PostgreSQL server to use; otherwise one is started with
# scripts/lib-peers.sh), BENCH_README=0 (do not append the results to bench/worklist/README.md),
# BENCH_INGEST=N (claim and list while 4 DCMTK dcmsend associations store N CT instances,
# bench/ingest's load, into the same hub: readers working during a clinic's upload).
set -euo pipefail

ITEMS=${1:-100000}
DBS=${BENCH_DBS:-sqlite postgres}
READERS=${BENCH_READERS:-10}
CLAIMS=${BENCH_CLAIMS:-2000}
LISTS=${BENCH_LISTS:-1000}
INGEST=${BENCH_INGEST:-0}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$ROOT/bench/out
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOGDIR=$OUT/worklist-logs-$STAMP
RESULTS=$OUT/worklist-results-$STAMP.md
mkdir -p "$LOGDIR"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=../../scripts/lib-peers.sh
. "$ROOT/scripts/lib-peers.sh"

SRV_PID=""
WORK=""
cleanup() {
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill -TERM -- "-$SRV_PID" 2>/dev/null || kill -TERM "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
    fi
    peers_stop_pg
    [ -z "$WORK" ] || rm -rf "$WORK"
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
        && cargo build --release -q -p dxhub-e2e --example worklist_bench)
fi
DXHUB=$TARGET/release/dxhub
BENCH=$TARGET/release/examples/worklist_bench
[ -x "$DXHUB" ] || die "$DXHUB missing"
[ -x "$BENCH" ] || die "$BENCH missing"
WORK=$(mktemp -d)

# the concurrent ingest's load: bench/ingest's CT instances (generated once, cached)
CT=""
if [ "$INGEST" -gt 0 ]; then
    if [ ! -x /usr/bin/dcmsend ]; then
        log "installing dcmtk"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dcmtk >/dev/null
    fi
    CT=$OUT/ct-$INGEST
    if [ ! -d "$CT" ]; then
        PY=""
        for cand in "$ROOT/.venv/bin/python" "$ROOT/bench/ingest/.venv/bin/python"; do
            if [ -x "$cand" ] && "$cand" -c 'import pydicom, numpy' 2>/dev/null; then PY=$cand; break; fi
        done
        if [ -z "$PY" ]; then
            python3 -m venv "$ROOT/bench/ingest/.venv"
            "$ROOT/bench/ingest/.venv/bin/pip" install -q pydicom numpy
            PY=$ROOT/bench/ingest/.venv/bin/python
        fi
        log "generating $INGEST CT instances into $CT"
        "$PY" "$ROOT/bench/ingest/gen_ct.py" ct "$CT" "$INGEST" --dirs 4
    fi
fi

# PostgreSQL: the given server, else a throwaway cluster (fsync off, like the test suite's)
PG_NOTE=""
if [[ " $DBS " == *" postgres "* ]]; then
    if [ -z "${DXHUB_TEST_PG_URL:-}" ]; then
        peers_start_pg || die "PostgreSQL is needed (or BENCH_DBS=sqlite)"
        PG_NOTE="a throwaway cluster started by scripts/lib-peers.sh (fsync, synchronous_commit and full_page_writes off)"
    else
        PG_NOTE="the server of DXHUB_TEST_PG_URL"
    fi
    command -v psql >/dev/null || PATH=$(peers_pg_bindir):$PATH
fi

declare -A NEXT_P50 NEXT_P95 NEXT_P99 NEXT_MAX LIST_P50 LIST_P95 LIST_P99 LIST_MAX SEED_S INGEST_NOTE

bench_db() { # bench_db sqlite|postgres
    local db=$1 d=$WORK/$db env_db=() url http dicom i seed result
    if [ "$db" = postgres ]; then
        local name="dxhub_wlbench_$$_$RANDOM"
        psql -q -v ON_ERROR_STOP=1 "$DXHUB_TEST_PG_URL" -c "CREATE DATABASE $name" >>"$LOGDIR/psql.log" 2>&1 \
            || die "CREATE DATABASE failed (see $LOGDIR/psql.log)"
        url="${DXHUB_TEST_PG_URL%/*}/$name"
        env_db=(DXHUB_DATABASE__URL="$url")
    else
        url="sqlite://$d/index.sqlite"
    fi
    local admin=(env "${env_db[@]}" "$DXHUB" --data-dir "$d" admin)
    "${admin[@]}" alliance add 基准医共体 >>"$LOGDIR/admin-$db.log" 2>&1 || die "alliance add"
    "${admin[@]}" institution add --alliance 基准医共体 --name H --level county >>"$LOGDIR/admin-$db.log" 2>&1 \
        || die "institution add"
    : >"$WORK/tokens-$db"
    for i in $(seq 1 "$READERS"); do
        printf 'Correct-horse-42\n' | "${admin[@]}" user add --institution H --login "bench.reader$i" \
            --role reader --password-stdin >>"$LOGDIR/admin-$db.log" 2>&1 || die "user add"
        "${admin[@]}" token issue --login "bench.reader$i" --ttl 2h 2>>"$LOGDIR/admin-$db.log" >>"$WORK/tokens-$db" \
            || die "token issue"
    done
    if [ "$INGEST" -gt 0 ]; then
        "${admin[@]}" ae add --institution H --ae-title BENCH >>"$LOGDIR/admin-$db.log" 2>&1 || die "ae add"
    fi
    log "$db: seeding $ITEMS queued work items …"
    seed=$("$BENCH" seed "$url" H "$ITEMS") || die "seeding failed"
    log "$db: $seed"
    local pool
    pool=$(echo "$seed" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pool_id"])')
    SEED_S[$db]=$(echo "$seed" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["seconds"],1))')
    http=$(pick_port); dicom=$(pick_port)
    env -u RUST_BACKTRACE "${env_db[@]}" setsid "$DXHUB" --data-dir "$d" serve --http "127.0.0.1:$http" \
        --dicom "127.0.0.1:$dicom" >"$LOGDIR/dxhub-$db.stdout" 2>"$LOGDIR/dxhub-$db.log" </dev/null &
    SRV_PID=$!
    wait_for 60 grep -q '"event":"ready"' "$LOGDIR/dxhub-$db.stdout" \
        || { tail "$LOGDIR/dxhub-$db.log" >&2; die "dxhub did not get ready"; }
    local senders=() t0 t_run t_ingest rc=0
    if [ "$INGEST" -gt 0 ]; then
        log "$db: storing $INGEST CT instances over 4 associations meanwhile …"
        t0=$(date +%s.%N)
        rm -f "$WORK"/ingest-end-*
        for i in 0 1 2 3; do
            (
                TCP_NODELAY=1 /usr/bin/dcmsend -aet BENCH -aec DXHUB 127.0.0.1 "$dicom" +sd "$CT/$i" \
                    >"$LOGDIR/dcmsend-$db-$i.log" 2>&1
                rc=$?
                date +%s.%N >"$WORK/ingest-end-$i"
                exit "$rc"
            ) &
            senders+=($!)
        done
        sleep 0.5
    fi
    log "$db: $CLAIMS claims and $LISTS queue queries by $READERS readers …"
    result=$("$BENCH" run "http://127.0.0.1:$http" "$WORK/tokens-$db" "$pool" "$CLAIMS" "$LISTS") \
        || { tail "$LOGDIR/dxhub-$db.log" >&2; die "$db: the run failed"; }
    if [ "$INGEST" -gt 0 ]; then
        t_run=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
        for i in "${senders[@]}"; do wait "$i" || rc=$?; done
        t_ingest=$(sort -n "$WORK"/ingest-end-* | tail -1 | awk -v a="$t0" '{printf "%.1f", $1-a}')
        [ "$rc" -eq 0 ] || log "WARNING: a dcmsend exited with status $rc (see $LOGDIR/dcmsend-$db-*.log)"
        INGEST_NOTE[$db]="$db: the claims and queries took ${t_run} s from the ingest's start (after 0.5 s of it), the ingest ${t_ingest} s (dcmsend status $rc)"
    fi
    echo "$result" >"$LOGDIR/result-$db.json"
    kill -TERM -- "-$SRV_PID" 2>/dev/null || kill -TERM "$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=""
    if [ "$db" = postgres ]; then
        psql -q "${DXHUB_TEST_PG_URL}" -c "DROP DATABASE $name" >>"$LOGDIR/psql.log" 2>&1 || true
    fi
    local v
    v=$(echo "$result" | python3 -c 'import json,sys
r = json.load(sys.stdin)
print(" ".join("%.2f" % r[w][k + "_ms"] for w in ("next", "list") for k in ("p50", "p95", "p99", "max")))')
    read -r NEXT_P50[$db] NEXT_P95[$db] NEXT_P99[$db] NEXT_MAX[$db] \
        LIST_P50[$db] LIST_P95[$db] LIST_P99[$db] LIST_MAX[$db] <<<"$v"
}

for db in $DBS; do
    bench_db "$db"
done

verdict() { if python3 -c "import sys; sys.exit(0 if $1 else 1)"; then echo PASS; else echo FAIL; fi; }
{
    echo "### Run $STAMP"
    echo
    echo "Machine: $(nproc) cores, $(uname -sr); dxhub $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')."
    echo "$ITEMS queued items in one pool, $READERS readers taking turns, $CLAIMS sequential claims,"
    echo "$LISTS sequential queue queries (limit 50). PostgreSQL: ${PG_NOTE:-not run}."
    echo
    echo "| database | request | p50 ms | p95 ms | p99 ms | max ms | target | verdict |"
    echo "|---|---|---:|---:|---:|---:|---|---|"
    for db in $DBS; do
        echo "| $db | POST /worklist/next | ${NEXT_P50[$db]} | ${NEXT_P95[$db]} | ${NEXT_P99[$db]} | ${NEXT_MAX[$db]} | p99 < 10 ms | $(verdict "${NEXT_P99[$db]} < 10") |"
        echo "| $db | GET /worklist?tab=queue&pool_id | ${LIST_P50[$db]} | ${LIST_P95[$db]} | ${LIST_P99[$db]} | ${LIST_MAX[$db]} | p99 < 20 ms | $(verdict "${LIST_P99[$db]} < 20") |"
    done
    echo
    seeds=()
    for db in $DBS; do seeds+=("$db ${SEED_S[$db]} s"); done
    echo "Seeding $ITEMS items by SQL: $(IFS=,; echo "${seeds[*]}" | sed 's/,/, /g')."
    [ "${BENCH_SQLITE_ANALYZE:-0}" != 1 ] || echo "SQLite was ANALYZEd after seeding (BENCH_SQLITE_ANALYZE=1)."
    if [ "$INGEST" -gt 0 ]; then
        echo "During a concurrent DIMSE ingest of $INGEST CT instances (512x512x16-bit, 4 dcmsend associations, BENCH_INGEST):"
        for db in $DBS; do echo "- ${INGEST_NOTE[$db]}."; done
    fi

} >"$RESULTS"

if [ "${BENCH_README:-1}" = 1 ]; then
    { echo; cat "$RESULTS"; } >>"$HERE/README.md"
fi
echo
cat "$RESULTS"
echo
echo "(results: $RESULTS, logs: $LOGDIR)"
