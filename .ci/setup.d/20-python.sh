#!/usr/bin/env bash
# The project's virtualenv (.venv, also named in Pulumi.yaml) with the program and test dependencies.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "python environment ready: $(.venv/bin/python --version)"
