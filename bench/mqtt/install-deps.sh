#!/bin/sh
# Installs what the optional MQTT memory analysis (bench/mqtt/tls-native-heap.mjs) needs, when it is
# missing: the Debian package `heaptrack` (1.4). Not part of the test install script: only that script uses it.
set -eu
exec sh "$(dirname "$0")/../../scripts/install-debian-packages.sh" heaptrack
