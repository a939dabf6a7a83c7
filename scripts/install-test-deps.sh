#!/bin/sh
# The Debian packages the test tiers use as real peers (openssl, curl, mosquitto and its clients,
# ss from iproute2, stdbuf from coreutils), installed when missing.
set -eu
exec sh "$(dirname "$0")/install-debian-packages.sh" openssl curl ca-certificates mosquitto mosquitto-clients iproute2 coreutils
