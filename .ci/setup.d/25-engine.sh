#!/usr/bin/env bash
# The real Pulumi engine (CLI, Python language host, plugins), built from Go modules and cached by
# version outside the repository: .ci/engine/build.sh. Needs the virtualenv (20-python.sh) to read
# the pulumi-command plugin version the installed pulumi_command declares.
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS
bash .ci/engine/build.sh "$PWD/.venv/bin/python"
echo "engine set-up took $((SECONDS - start)) s"
