#!/usr/bin/env bash
# Draws the PNG plots of `tessera-bench compare` from its CSV, with matplotlib in a
# virtualenv this script makes on first use (pip from the package registry; no system
# fonts or libraries needed: matplotlib ships its fonts).
#   bash bench/plot/plot.sh COMPARE.csv OUT_DIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${TESSERA_PLOT_VENV:-$here/.venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import matplotlib" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
exec "$venv/bin/python" "$here/plot_compare.py" "$@"
