#!/usr/bin/env bash
# Installs the Debian packages Monolake for Go needs to build, test and
# benchmark: liburing and libssl headers for the cgo build, nginx (and its
# stream module) and wrk/h2load for the tests and the benchmark suite.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

PKGS=(
	build-essential pkg-config
	liburing-dev libssl-dev openssl
	nginx libnginx-mod-stream
	wrk nghttp2-client curl
	procps
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		SUDO=sudo
	else
		echo "install-deps: missing packages: ${missing[*]}" >&2
		echo "install-deps: run as root (or with passwordless sudo) to install them:" >&2
		echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
else
	SUDO=
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
# The nginx package starts a system nginx on port 80; the project runs its own
# nginx instances with their own configs, so stop the system one if it started.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
	$SUDO systemctl stop nginx || true
elif [ -f /run/nginx.pid ]; then
	$SUDO nginx -s quit 2>/dev/null || true
fi
echo "install-deps: done"
