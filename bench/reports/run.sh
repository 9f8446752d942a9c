#!/usr/bin/env bash
# dxhub reports benchmark (issue #7), side by side with OpenSSL in one run:
#   1. SM2 sign/verify per second of a typical report signature (dxhub_core::report: SM3 over
#      the canonical bytes, ~28 KB with 200 instance hashes, then SM2) against
#      `openssl speed sm2` (OpenSSL signs a fixed small digest: its numbers are the SM2
#      operation alone, ours include hashing the report);
#   2. PDF rendering of a two-page Chinese ECG report with a 2,400 × 1,200 trace, fields,
#      addenda and the QR code (dxhub-pdf, WenQuanYi Micro Hei subset).
#
#   bash bench/reports/run.sh
#
# Environment: BENCH_SECONDS (3, per SM2 operation), BENCH_PDFS (50), BENCH_README=0 (do not
# append the results to bench/reports/README.md).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECS=${BENCH_SECONDS:-3}
PDFS=${BENCH_PDFS:-50}
cd "$ROOT"
command -v openssl >/dev/null || { echo "bench/reports: openssl not found (apt-get install openssl)" >&2; exit 1; }
cargo build -q --release -p dxhub-core --example sm2_bench
cargo build -q --release -p dxhub-pdf --example pdf_bench
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ours=$("$TARGET/release/examples/sm2_bench" "$SECS")
peer=$(openssl speed -seconds "$SECS" sm2 2>/dev/null | awk '/SM2/ {print $(NF-1), $NF}')
pdf=$("$TARGET/release/examples/pdf_bench" "$PDFS")
sign=$(printf '%s' "$ours" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["sign_per_s"]))')
verify=$(printf '%s' "$ours" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["verify_per_s"]))')
read -r psign pverify <<<"$peer"
p95=$(printf '%s' "$pdf" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["p95_ms"],1))')
mean=$(printf '%s' "$pdf" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["mean_ms"],1))')
result=$(cat <<MD

### $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(git rev-parse --short HEAD))

| | sign/s | verify/s |
|---|---|---|
| dxhub (SM3 of the report + SM2) | $sign | $verify |
| OpenSSL $(openssl version | awk '{print $2}') \`speed sm2\` | ${psign%.*} | ${pverify%.*} |

PDF (two-page ECG report, $PDFS renders): mean $mean ms, p95 $p95 ms.
MD
)
printf '%s\n' "$result"
if [ "${BENCH_README:-1}" != 0 ]; then printf '%s\n' "$result" >> "$HERE/README.md"; fi
