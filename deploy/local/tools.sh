#!/usr/bin/env bash
# Tools the tests run that are not Python packages, into .cache/bin, built with the machine's Go (Debian's golang-go
# when there is none): kustomize, and composecheck (deploy/local/composecheck: compose-go, the Compose
# specification's reference loader). Pinned; rebuilt only when the pin or the source changes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/.cache/bin"
KUSTOMIZE_VERSION=v5.8.0
mkdir -p "$bin"
need_go() {
  if ! command -v go >/dev/null; then
    [ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"
  fi
  if ! command -v go >/dev/null; then
    echo "[tools] installing Go from Debian's packages"
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q golang-go >/dev/null
  fi
}
if [ "$("$bin/kustomize" version 2>/dev/null)" != "$KUSTOMIZE_VERSION" ]; then
  need_go
  echo "[tools] building kustomize $KUSTOMIZE_VERSION"
  GOBIN="$bin" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
fi
check="$root/deploy/local/composecheck"
sum="$(cat "$check/go.mod" "$check/go.sum" "$check/main.go" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$bin/composecheck" ] || [ "$(cat "$bin/.composecheck.sum" 2>/dev/null)" != "$sum" ]; then
  need_go
  echo "[tools] building composecheck (compose-go, pinned in deploy/local/composecheck/go.mod)"
  (cd "$check" && go build -mod=readonly -o "$bin/composecheck" .)
  echo "$sum" > "$bin/.composecheck.sum"
fi
