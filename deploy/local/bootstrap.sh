#!/usr/bin/env bash
# Creates the virtualenv at $1 with Python 3.11 and installs the project (editable) with its dev and run extras,
# exactly the dependency tree of uv.lock (`uv sync --frozen`: nothing resolved anew, every file checked by its hash).
set -euo pipefail
venv="${1:-.venv}"
sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"

python=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    python="$(command -v "$candidate")"; break
  fi
done
if [ -z "$python" ]; then
  echo "[bootstrap] installing Python 3.11 from Debian's packages"
  $sudo_ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q python3.11 python3.11-venv >/dev/null
  python="$(command -v python3.11)"
fi
if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' 2>/dev/null; then
  echo "[bootstrap] installing python3.11-venv"
  $sudo_ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q python3.11-venv >/dev/null
fi
# The portal's PDFs embed DejaVu (å ä ö); its browser tests drive Debian's Chromium (never a downloaded browser).
missing=""
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$missing fonts-dejavu-core"
command -v chromium >/dev/null || missing="$missing chromium"
# The login tests run an independent OpenID provider (panva's oidc-provider, tests/oidc_provider) on Node.
command -v node >/dev/null || missing="$missing nodejs"
command -v npm >/dev/null || missing="$missing npm"
if [ -n "$missing" ]; then
  echo "[bootstrap] installing$missing from Debian's packages"
  $sudo_ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q $missing >/dev/null
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip==25.3
# uv from PyPI, pinned by hash; it then installs the lock. Regenerate the lock after editing pyproject.toml with
# `make lock` (tests/unit/test_lock.py fails while they disagree).
"$venv/bin/pip" install -q --disable-pip-version-check --require-hashes --no-deps -r deploy/local/uv-requirements.txt
UV_PROJECT_ENVIRONMENT="$venv" SSL_CERT_FILE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" \
  "$venv/bin/uv" sync --quiet --frozen --extra dev --extra run --python "$venv/bin/python"
# The pinned package-lock.json files of the Node test counterparts: the OpenID provider, and the validators
# generated from the Strimzi and CloudNativePG CRDs that check deploy/k8s.
for package in tests/oidc_provider tests/crd_validator; do
  (cd "$(dirname "$0")/../../$package" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
done
echo "[bootstrap] $venv ready ($("$venv/bin/python" --version))"
