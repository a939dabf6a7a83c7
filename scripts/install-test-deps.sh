#!/bin/sh
# Installs the Debian packages the test tiers use as real peers, when they are missing.
# Idempotent; needs root (or sudo) only when something is missing.
set -eu
PACKAGES="openssl curl ca-certificates mosquitto mosquitto-clients iproute2 coreutils"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing Debian packages:$missing" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
