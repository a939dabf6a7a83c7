#!/bin/sh
# Installs what the wrk enrollment benchmark (bench/enroll/run-wrk.mjs) needs, when it is missing:
# the Debian package `wrk` (4.1, LuaJIT scripting). Not part of the test install script: only the
# benchmark uses it. Idempotent; needs root (or sudo) only when something is missing.
set -eu
PACKAGES="wrk"
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
