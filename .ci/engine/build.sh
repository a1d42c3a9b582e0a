#!/usr/bin/env bash
# The real Pulumi engine, built from Go modules (no download site is reachable; see docs/engine.md).
#
# Installs into ~/.pulumi/bin (where the official installer puts the CLI):
#   pulumi                        CLI + engine, github.com/pulumi/pulumi/pkg/v3 ./cmd/pulumi @ PULUMI_VERSION
#   pulumi-language-python        the Python language host, built from .ci/engine/language-python (docs/engine.md)
#   pulumi-language-python-exec   Python script from the sdk/v3 module zip (same version)
#   pulumi-resource-pulumi-python the dynamic-provider plugin script from the sdk/v3 module zip
# and the pulumi-command resource plugin at the version the installed pulumi_command wheel declares,
# registered with `pulumi plugin install resource command V --file`.
#
# Each binary is cached by version under ENGINE_CACHE (outside the repository), so a warm set-up
# takes seconds. A pulumi already on PATH that is at least PULUMI_MIN_VERSION is used as it is.
# Usage: build.sh PYTHON   (the project's virtualenv python, to read pulumi_command's plugin version)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${1:?usage: build.sh PATH_TO_VENV_PYTHON}
PULUMI_VERSION=${PULUMI_VERSION:-v3.274.1}
PULUMI_MIN_VERSION=${PULUMI_MIN_VERSION:-3.216.0}
PULUMI_COMMAND_COMMIT_v1_2_1=7f3eb6f3b77cd0fa3895ba437a695dd393f7dd25   # tag v1.2.1 (no provider/v1.2.1 tag)
ENGINE_CACHE=${ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devpi-registry/engine}
BIN="$HOME/.pulumi/bin"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
step() { STEP=$1; echo "== engine: $1"; }
fail() { echo "engine set-up failed at step '$STEP': $*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || echo "engine set-up failed at step '"'"'${STEP:-start}'"'"' (exit $rc)" >&2' EXIT
LDVER="-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION"
GOBUILD=(go build -trimpath -tags osusergo,grpcnotrace -ldflags "-s -w $LDVER")

version_ge() { # version_ge A B: A >= B (dotted, optional leading v)
  [ "$(printf '%s\n%s\n' "${1#v}" "${2#v}" | sort -V | head -1)" = "${2#v}" ]
}

mkdir -p "$BIN" "$ENGINE_CACHE"
existing=$(PATH="$PATH" command -v pulumi || true)
if [ -n "$existing" ] && [ "$existing" != "$BIN/pulumi" ]; then
  v=$(pulumi version 2>/dev/null || true)
  if [ -n "$v" ] && version_ge "$v" "$PULUMI_MIN_VERSION" && command -v pulumi-language-python >/dev/null; then
    echo "== engine: using pulumi $v already on PATH ($existing)"
    CLI=$existing
  fi
fi

if [ -z "${CLI:-}" ]; then
  command -v go >/dev/null || fail "go is not installed"
  scratch="$ENGINE_CACHE/src-$PULUMI_VERSION"
  if [ ! -d "$scratch/pkg" ]; then
    step "go modules for pulumi $PULUMI_VERSION"
    tmp=$(mktemp -d "$ENGINE_CACHE/src.XXXXXX")
    pkgdir=$(cd "$tmp" && go mod download -json "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') || fail "go mod download pkg/v3"
    sdkdir=$(cd "$tmp" && go mod download -json "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') || fail "go mod download sdk/v3"
    # The monorepo layout the relative replace directives expect (pkg/go.mod: sdk/v3 => ../sdk).
    cp -r "$pkgdir" "$tmp/pkg"; cp -r "$sdkdir" "$tmp/sdk"; chmod -R u+w "$tmp"
    rm -rf "$scratch"; mv "$tmp" "$scratch"
  fi

  cli_cache="$ENGINE_CACHE/pulumi-$PULUMI_VERSION"
  if [ ! -x "$cli_cache/pulumi" ]; then
    step "build pulumi $PULUMI_VERSION (cold: tens of minutes on 2 cores)"
    mkdir -p "$cli_cache.tmp"
    (cd "$scratch/pkg" && "${GOBUILD[@]}" -o "$cli_cache.tmp/pulumi" ./cmd/pulumi) || fail "go build ./cmd/pulumi"
    rm -rf "$cli_cache"; mv "$cli_cache.tmp" "$cli_cache"
  fi

  lang_src="$HERE/language-python"
  lang_cache="$ENGINE_CACHE/language-python-$PULUMI_VERSION-$(cat "$lang_src"/*.go "$lang_src"/go.mod "$lang_src"/go.sum | sha256sum | cut -c1-12)"
  if [ ! -x "$lang_cache/pulumi-language-python" ]; then
    step "build pulumi-language-python against sdk $PULUMI_VERSION"
    mkdir -p "$lang_cache.tmp"
    (cd "$lang_src" && GOFLAGS=-mod=readonly "${GOBUILD[@]}" -o "$lang_cache.tmp/pulumi-language-python" .) \
      || fail "go build pulumi-language-python"
    rm -rf "$lang_cache"; mv "$lang_cache.tmp" "$lang_cache"
  fi

  step "install into $BIN"
  install -m 0755 "$cli_cache/pulumi" "$BIN/pulumi"
  install -m 0755 "$lang_cache/pulumi-language-python" "$BIN/pulumi-language-python"
  install -m 0755 "$scratch/sdk/python/cmd/pulumi-language-python-exec" "$BIN/pulumi-language-python-exec"
  install -m 0755 "$scratch/sdk/python/dist/pulumi-resource-pulumi-python" "$BIN/pulumi-resource-pulumi-python"
  CLI="$BIN/pulumi"
fi

step "pulumi-command plugin"
cmd_version=$("$PYTHON" - <<'PY'
import json
from importlib import resources
print(json.loads(resources.files("pulumi_command").joinpath("pulumi-plugin.json").read_text())["version"])
PY
) || fail "read pulumi_command's pulumi-plugin.json (is pulumi_command installed?)"
export PULUMI_HOME="${PULUMI_HOME:-$HOME/.pulumi}"
if [ ! -x "$PULUMI_HOME/plugins/resource-command-v$cmd_version/pulumi-resource-command" ]; then
  cmd_cache="$ENGINE_CACHE/pulumi-resource-command-v$cmd_version"
  if [ ! -x "$cmd_cache/pulumi-resource-command" ]; then
    ref_var="PULUMI_COMMAND_COMMIT_v${cmd_version//./_}"
    ref=${!ref_var:-v$cmd_version}
    step "build pulumi-resource-command v$cmd_version ($ref)"
    mkdir -p "$cmd_cache.tmp"
    log=$(mktemp)
    if GOBIN="$cmd_cache.tmp" go install -trimpath \
        "github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command@$ref" >"$log" 2>&1; then
      rm -rf "$cmd_cache"; mv "$cmd_cache.tmp" "$cmd_cache"
    elif grep -q "This module version is not available" "$log"; then
      # Not a build failure: the Go module proxy these machines reach refuses every version of
      # github.com/pulumi/pulumi-command/provider (docs/engine.md). Say so once, plainly, and go on:
      # the engine runs everything else; the host steps are covered without it.
      rm -rf "$cmd_cache.tmp"
      echo "== engine: pulumi-command plugin v$cmd_version is NOT available here: the Go module proxy refuses" \
           "github.com/pulumi/pulumi-command/provider ($(grep -o '403 Forbidden' "$log" | head -1))." \
           "Stacks with a host cannot run through the engine on this machine."
      cmd_version=""
    else
      cat "$log" >&2
      fail "go install pulumi-resource-command@$ref"
    fi
    rm -f "$log"
  fi
  if [ -n "$cmd_version" ]; then
    step "register pulumi-command plugin v$cmd_version"
    "$CLI" plugin install resource command "$cmd_version" --file "$cmd_cache/pulumi-resource-command" >/dev/null \
      || fail "pulumi plugin install resource command $cmd_version"
  fi
fi
STEP=done
echo "engine ready: $("$CLI" version) at $CLI; resource plugin command: ${cmd_version:+v$cmd_version}${cmd_version:-absent}"
