#!/usr/bin/env bash
# The project's virtualenv (.venv, also named in Pulumi.yaml) with the program and test dependencies.
# Skipped when .venv already holds them for this pyproject.toml (a stamp keyed by its hash).
set -euo pipefail
cd "$(dirname "$0")/../.."
stamp=.venv/.installed-pyproject
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "python environment ready (unchanged): $(.venv/bin/python --version)"
  exit 0
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[stack,test]'
echo "$want" >"$stamp"
echo "python environment ready: $(.venv/bin/python --version)"
