#!/usr/bin/env bash
# The one command that runs every dxhub test:   bash scripts/test.sh [cargo test args...]
#
# 1. installs what is missing (apt: dcmtk postgresql cmake; .venv/ from
#    tests/py/requirements.txt), quietly and only when missing;
# 2. generates the DICOM corpus into target/test-corpus (reused while unchanged);
# 3. starts a throwaway PostgreSQL cluster and moto_server (S3) on free ports;
# 4. exports DXHUB_TEST_* (see scripts/lib-peers.sh) and PATH with DCMTK first;
# 5. cargo build --workspace --bins, then cargo test --workspace "$@".
# Peers are stopped on exit; the exit code is cargo's.
# Under CI=true a missing peer is a hard failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# shellcheck source=scripts/lib-peers.sh
. "$ROOT/scripts/lib-peers.sh"

trap peers_stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CARGO=$(command -v cargo) || { echo "scripts/test.sh: cargo not found on PATH" >&2; exit 1; }

# CI builds once from scratch: incremental caches would only take disk.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi

peers_setup
peers_print_env | sed -e 's/^/[peers] /' -e 's/\(SECRET_KEY=\).*/\1***/' >&2

"$CARGO" build --workspace --bins

set +e
"$CARGO" test --workspace "$@"
rc=$?
set -e
exit "$rc"
