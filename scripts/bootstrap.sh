#!/usr/bin/env bash
# Create (or refresh) the project's virtualenv in .venv with everything the job and the tests need.
# Idempotent: re-installs only when pyproject.toml changed. Source it or run it.
# On a machine whose Python cannot create a venv (Debian without pythonX.Y-venv) it installs that package
# first (scripts/ensure_tools.sh); a .venv whose pip does not run (a venv creation that failed) is re-created.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
# shellcheck source=scripts/ensure_tools.sh
source "$ROOT/scripts/ensure_tools.sh"
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  cg_ensure_python_venv "$PY"
  echo "consentgate: creating $VENV" >&2
  "$PY" -m venv --clear "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
STAMP="$VENV/.consentgate-installed"
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "consentgate: installing dependencies into $VENV (first time: about 2 minutes)" >&2
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev]"
  echo "$WANT" > "$STAMP"
fi
# The editable build leaves plugins/consentgate.egg-info beside the package, and plugins/ is on sys.path:
# Airflow would then find a second copy of the distribution and register the plugin twice.
rm -rf "$ROOT/plugins/consentgate.egg-info"
