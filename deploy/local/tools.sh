#!/usr/bin/env bash
# Tools the tests run that are not Python packages, into .cache: kustomize and composecheck (deploy/local/composecheck:
# compose-go, the Compose specification's reference loader), built with the machine's Go (Debian's golang-go when
# there is none), and veraPDF (jars from Maven Central). Pinned; rebuilt or refetched only when a pin or a source
# changes.
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

# veraPDF (the PDF/UA-1 validator the portal's PDF tests run): the jars of deploy/verapdf/pom.xml (every version
# pinned there) from Maven Central into .cache/verapdf/libs, once per version of that file; run on Java 17 as
# `java -cp '.cache/verapdf/libs/*' org.verapdf.apps.GreenfieldCliWrapper` (the greenfield-apps CLI entry point).
verapdf="$root/.cache/verapdf"
verapdf_pom="$root/deploy/verapdf/pom.xml"
verapdf_marker="$verapdf/libs/.complete-$(sha256sum "$verapdf_pom" | cut -c1-16)"
if [ ! -e "$verapdf_marker" ]; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    echo "[tools] installing Java 17 and Maven from Debian's packages"
    $sudo_ apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q --no-install-recommends openjdk-17-jre-headless maven >/dev/null
  fi
  echo "[tools] fetching veraPDF from Maven Central"
  rm -rf "$verapdf/libs"
  mkdir -p "$verapdf/libs"
  mvn -q -B -f "$verapdf_pom" dependency:copy-dependencies -DoutputDirectory="$verapdf/libs" -DincludeScope=runtime
  touch "$verapdf_marker"
fi
