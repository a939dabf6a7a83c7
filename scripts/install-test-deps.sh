#!/bin/sh
# The Debian packages the test tiers use as real peers (openssl, curl, mosquitto and its clients,
# ss from iproute2, stdbuf from coreutils), installed when missing.
# Hardware key stores (issue 5, ADR 0024): SoftHSM2 as the PKCS#11 token, OpenSSL's pkcs11
# engine for mutual TLS with a token key, opensc for pkcs11-tool, swtpm + tpm2-tools as the TPM,
# libtpm2-pkcs11 for TPM keys behind PKCS#11; tpm2_ptool (libtpm2-pkcs11-tools) links TPM keys into a
# token for TLS, tpm2-abrmd on a private dbus-daemon is the resource manager swtpm lacks, and p11-kit
# server/client carries the TPM token to mosquitto clients (ADR 0028).
set -eu
exec sh "$(dirname "$0")/install-debian-packages.sh" openssl curl ca-certificates mosquitto mosquitto-clients iproute2 coreutils \
  softhsm2 libengine-pkcs11-openssl opensc swtpm swtpm-tools tpm2-tools libtpm2-pkcs11-1 \
  libtpm2-pkcs11-tools tpm2-abrmd libtss2-tcti-tabrmd0 dbus-daemon p11-kit p11-kit-modules
