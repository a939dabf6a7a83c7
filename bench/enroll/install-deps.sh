#!/bin/sh
# Installs what the wrk enrollment benchmark (bench/enroll/run-wrk.mjs) needs, when it is missing:
# the Debian package `wrk` (4.1, LuaJIT scripting). Not part of the test install script: only the
# benchmark uses it.
set -eu
exec sh "$(dirname "$0")/../../scripts/install-debian-packages.sh" wrk
