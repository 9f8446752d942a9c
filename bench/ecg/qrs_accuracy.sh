#!/usr/bin/env bash
# QRS detection accuracy of dxhub-ecg's analysis (see bench/ecg/README.md):
#   1. synthetic ECGs of known truth at several rhythms, rates, sampling rates and SNRs
#      (the `ecg_analyse accuracy` example; no Python);
#   2. scipy's ecg.dat (MIT-BIH 208, MLII, 5 min, 360 Hz) against wfdb's XQRS and
#      neurokit2's ecg_peaks (pairwise Se / +P, ±50 ms), and the list of disagreements;
#   3. timing of `analyse` on 10 s x 12 leads x 500 Hz, and on 24 h x 3 leads x 200 Hz.
# Results go to target/ecg-bench/ (results.md is the summary). Needs python3 with venv and
# PyPI; the venv (target/ecg-bench/venv) is made from bench/ecg/requirements.txt, pinned.
#
#   bash bench/ecg/qrs_accuracy.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
OUT=$ROOT/target/ecg-bench
VENV=$OUT/venv
REQ=$ROOT/bench/ecg/requirements.txt
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/.requirements.txt"; then
  echo "[ecg-bench] creating $VENV from bench/ecg/requirements.txt ..." >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/pip" install -q -r "$REQ"
  cp "$REQ" "$VENV/.requirements.txt"
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build -q --release -p dxhub-ecg --example ecg_qrs --example ecg_analyse
BIN=$CARGO_TARGET_DIR/release/examples

echo "[ecg-bench] synthetic accuracy ..." >&2
"$BIN/ecg_analyse" accuracy > "$OUT/synthetic.md"

echo "[ecg-bench] ecg.dat against wfdb XQRS and neurokit2 ..." >&2
SIG=$("$VENV/bin/python" tests/py/ecg_qrs_ecgdat.py "$OUT/data")
"$BIN/ecg_qrs" --fs 360 "$SIG" > "$OUT/dxhub.txt"
"$VENV/bin/python" bench/ecg/qrs_peers.py "$SIG" "$OUT/dxhub.txt" "$OUT" > "$OUT/ecgdat.md"

echo "[ecg-bench] timing ..." >&2
"$BIN/ecg_analyse" bench 500 > "$OUT/timing.txt"
"$BIN/ecg_analyse" long 24 >> "$OUT/timing.txt"

{
  echo "# dxhub-ecg QRS accuracy, $(date -u +%Y-%m-%d), $(nproc) cores"
  echo
  echo "## Synthetic (truth known), ±50 ms"
  echo
  cat "$OUT/synthetic.md"
  echo
  echo "## scipy ecg.dat (MIT-BIH 208 excerpt), pairwise, ±50 ms"
  echo
  cat "$OUT/ecgdat.md"
  echo
  echo "## Timing"
  echo
  sed 's/^/    /' "$OUT/timing.txt"
} > "$OUT/results.md"
cat "$OUT/results.md"
