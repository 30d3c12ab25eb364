#!/usr/bin/env bash
# Installs what the build, the tests and the local run need: Debian packages and npm tools.
# Idempotent and quiet when everything is there already. Runs as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  cmake ninja-build ccache g++ pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libgtest-dev libgmock-dev
  libmysqlcppconn-dev libsqlite3-dev libssl-dev libyaml-cpp-dev prometheus-cpp-dev libexpat1-dev
  mariadb-server mariadb-client
  libhpdf-dev fonts-dejavu-core poppler-utils
  nodejs npm openssl
)

missing=()
for p in "${PACKAGES[@]}"; do
  # npm from Debian conflicts with a node that ships its own npm: accept any npm on PATH.
  if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
  if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm tools (buf, googleapis protos), pinned by package-lock.json.
if [ ! -x node_modules/.bin/buf ] || [ ! -f node_modules/google-proto-files/google/rpc/status.proto ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

# promtool (tests/k8s/check_alerts.sh) from Debian's `prometheus` package, unpacked under .tools/
# without installing the server (no daemon, no user).
if [ ! -x .tools/prometheus/usr/bin/promtool ]; then
  echo "deps: promtool (Debian prometheus package, unpacked in .tools/)"
  rm -rf .tools/prometheus && mkdir -p .tools/prometheus
  (cd .tools && { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus >/dev/null; }; } \
     && dpkg-deb -x prometheus_*.deb prometheus && rm -f prometheus_*.deb)
fi
