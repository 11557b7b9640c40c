#!/usr/bin/env bash
# Tools the tests run that are not Python packages, into .cache/bin: kustomize (a Go module, built with the
# machine's Go; Debian's golang-go when there is none). Pinned; rebuilt only when the pin changes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/.cache/bin"
KUSTOMIZE_VERSION=v5.8.0
mkdir -p "$bin"
if [ "$("$bin/kustomize" version 2>/dev/null)" != "$KUSTOMIZE_VERSION" ]; then
  if ! command -v go >/dev/null; then
    [ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"
  fi
  if ! command -v go >/dev/null; then
    echo "[tools] installing Go from Debian's packages"
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q golang-go >/dev/null
  fi
  echo "[tools] building kustomize $KUSTOMIZE_VERSION"
  GOBIN="$bin" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
fi
