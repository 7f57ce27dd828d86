#!/usr/bin/env bash
# The system tools the test suite needs, installed with apt-get when missing: PostgreSQL's server binaries
# (initdb, pg_ctl, postgres), chromium, a Java >= 17 runtime (the Spark cluster the suite starts), and node + npm with the test-only Node reference project's packages;
# and, for scripts/bootstrap.sh, a Python >= 3.11 able to create a venv.
#
#   source scripts/ensure_tools.sh && cg_ensure_tools "$ROOT"   # scripts/test.sh: keeps the PATH it sets
#   scripts/ensure_tools.sh                                      # the same, in a child shell
#
# Each cg_ensure_* function checks the tool, else installs its Debian package(s) with
# `$CG_SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq PKG` (after one `apt-get update` per
# shell; CG_SUDO is empty as root, `sudo` otherwise), checks again, and on failure prints one line
# `consentgate: ...` to stderr and returns 1. Tools are found on PATH only, and PostgreSQL's also in
# CONSENTGATE_PG_BIN_GLOB (default /usr/lib/postgresql/*/bin, where Debian puts them; highest version first).

cg_error() {  # MESSAGE: one line on stderr
  echo "consentgate: $*" >&2
}

cg_have() {  # NAME...: true when every NAME is a command on PATH
  local name
  for name in "$@"; do
    command -v "$name" >/dev/null 2>&1 || return 1
  done
}

cg_last_line() {  # FILE: its last non-blank line, for a one-line error
  grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1
}

cg_root_prefix() {  # WHAT PKGS: sets CG_SUDO to "" as root, "sudo" otherwise; fails when neither works
  if [ "$(id -u)" -eq 0 ]; then
    CG_SUDO=""
  elif cg_have sudo; then
    CG_SUDO="sudo"
  else
    cg_error "$1 is missing and installing it needs root: not root (uid $(id -u)) and no sudo; run as root or install Debian package(s) '$2' yourself"
    return 1
  fi
  if ! cg_have apt-get; then
    cg_error "$1 is missing and there is no apt-get to install it; install '$2' (or your system's equivalent) yourself"
    return 1
  fi
}

cg_apt() {  # WHAT ARGS...: runs `apt-get ARGS` as root; on failure one line naming the command and apt's last line
  local what="$1" log rc=0
  shift
  log="$(mktemp)"
  $CG_SUDO env DEBIAN_FRONTEND=noninteractive apt-get "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    cg_error "could not install $what: '${CG_SUDO:+$CG_SUDO }apt-get $*' failed (exit $rc: $(cg_last_line "$log")); install it yourself and re-run"
  fi
  rm -f "$log"
  return "$rc"
}

cg_apt_install() {  # WHAT PKG...: apt-get update (once per shell), then apt-get install PKG...
  local what="$1"
  shift
  cg_root_prefix "$what" "$*" || return 1
  echo "consentgate: installing $what (apt-get install $*)" >&2
  if [ -z "${CG_APT_UPDATED:-}" ]; then
    cg_apt "$what" update -qq || return 1
    CG_APT_UPDATED=1
  fi
  cg_apt "$what" install -y -qq "$@"
}

cg_pg_path() {  # appends the PostgreSQL bin folders (highest version first) to PATH
  local dir
  while IFS= read -r dir; do
    [ -d "$dir" ] || continue
    case ":$PATH:" in *":$dir:"*) ;; *) PATH="$PATH:$dir" ;; esac
  done < <(printf '%s\n' ${CONSENTGATE_PG_BIN_GLOB:-/usr/lib/postgresql/*/bin} | sort -rV)
  export PATH
}

cg_ensure_postgres() {  # PostgreSQL's server binaries, for the suite's throwaway server (tests/pgserver.py)
  local what="PostgreSQL server binaries (initdb, pg_ctl, postgres)"
  cg_pg_path
  cg_have initdb pg_ctl postgres && return 0
  cg_apt_install "$what" postgresql || return 1
  cg_pg_path
  cg_have initdb pg_ctl postgres && return 0
  cg_error "$what still missing after 'apt-get install postgresql': not on PATH nor in ${CONSENTGATE_PG_BIN_GLOB:-/usr/lib/postgresql/*/bin}"
  return 1
}

cg_ensure_chromium() {  # a headless browser, for the report's browser test
  cg_have chromium && return 0
  cg_apt_install "chromium (headless browser for the report's browser test)" chromium || return 1
  cg_have chromium && return 0
  cg_error "chromium still missing from PATH after 'apt-get install chromium'"
  return 1
}

cg_java_major() {  # the major version of the `java` on PATH (17 for "17.0.15", 8 for "1.8.0_402"), or nothing
  local v
  v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9._]*\).*/\1/p' | head -n 1)"
  case "$v" in 1.*) v="${v#1.}" ;; esac
  echo "${v%%[._]*}"
}

cg_ensure_java() {  # a Java >= 17 runtime, for the Spark master, worker and Connect server (pyspark's jars)
  local what="a Java 17 runtime (for the test suite's Spark cluster)" major
  if cg_have java; then
    major="$(cg_java_major)"
    [ -n "$major" ] && [ "$major" -ge 17 ] && return 0
  fi
  cg_apt_install "$what" openjdk-17-jre-headless || return 1
  major="$(cg_have java && cg_java_major)"
  [ -n "$major" ] && [ "$major" -ge 17 ] && return 0
  cg_error "$what still missing after 'apt-get install openjdk-17-jre-headless': java on PATH is ${major:+version }${major:-absent}"
  return 1
}

cg_ensure_node() {  # node and npm, for the test-only Node reference implementations
  cg_have node npm && return 0
  cg_apt_install "node and npm (Node reference implementations for the signal tests)" nodejs npm || return 1
  cg_have node npm && return 0
  cg_error "node or npm still missing from PATH after 'apt-get install nodejs npm'"
  return 1
}

cg_ensure_node_reference() {  # DIR: a Node project with a package-lock.json; `npm ci` when the lockfile changed
  local dir="$1" want log rc=0
  local lock="$dir/package-lock.json" stamp="$dir/node_modules/.consentgate-lock-sha256"
  [ -f "$lock" ] || return 0
  cg_ensure_node || return 1
  want="$(sha256sum "$lock" | cut -d' ' -f1)"
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  echo "consentgate: installing the Node reference packages in $dir (npm ci)" >&2
  log="$(mktemp)"
  npm ci --prefix "$dir" --no-audit --no-fund >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    cg_error "could not install the Node reference packages: 'npm ci --prefix $dir' failed (exit $rc: $(cg_last_line "$log")); fix $lock or the npm registry access and re-run"
  else
    echo "$want" >"$stamp"
  fi
  rm -f "$log"
  return "$rc"
}

cg_python_can_make_venvs() {  # PY
  "$1" -c 'import ensurepip, venv' >/dev/null 2>&1
}

cg_ensure_python_venv() {  # PY: a Python >= 3.11 that can create a venv with pip (Debian: pythonX.Y-venv)
  local py="$1" ver
  if ! ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"; then
    cg_error "no Python interpreter '$py' to create the venv with: install python3.11 or set PYTHON=/path/to/python3.11"
    return 1
  fi
  case "$ver" in
    3.1[1-9] | 3.[2-9][0-9]) ;;
    *) cg_error "Python >= 3.11 needed, '$py' is Python $ver: install python3.11 or set PYTHON=/path/to/python3.11"
       return 1 ;;
  esac
  cg_python_can_make_venvs "$py" && return 0
  cg_apt_install "Python's venv module for $py" "python$ver-venv" || return 1
  cg_python_can_make_venvs "$py" && return 0
  cg_error "'$py' still cannot create a venv (no ensurepip) after 'apt-get install python$ver-venv'; set PYTHON to another python3.11"
  return 1
}

cg_ensure_tools() {  # ROOT: everything the test suite needs beyond the venv
  local root="$1"
  cg_ensure_postgres || return 1
  cg_ensure_chromium || return 1
  cg_ensure_java || return 1
  cg_ensure_node_reference "$root/tests/signals/reference" || return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cg_ensure_tools "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fi
