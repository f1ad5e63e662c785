#!/usr/bin/env bash
# Regenerates the X.509 TEST chains under this directory (gp-scp/tests/cert_chain.rs).
# Every key here is a CLEARLY-MARKED TEST KEY ("danger-test"): never trust it anywhere.
# Needs the openssl CLI (3.x). Keys and signatures are random: rerunning changes every file.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/ext.cnf" <<'CNF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[not_ca]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyAgreement
[leaf_sign_only]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
[leaf_unknown_critical]
basicConstraints = critical, CA:FALSE
1.3.6.1.4.1.99999.1 = critical, ASN1:NULL
CNF
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/$1.key"; }
root() { # name subject
  key "$1"
  openssl req -new -x509 -key "$tmp/$1.key" -sha256 -days 36500 -subj "$2" \
    -config "$tmp/ext.cnf" -extensions ca -outform DER -out "$1.der"
}
issue() { # name subject issuer extensions [days]
  key "$1"
  openssl req -new -key "$tmp/$1.key" -subj "$2" -out "$tmp/$1.csr"
  openssl x509 -req -in "$tmp/$1.csr" -CA "$3.der" -CAform DER -CAkey "$tmp/$3.key" -sha256 \
    -days "${5:-36500}" -extfile "$tmp/ext.cnf" -extensions "$4" -outform DER -out "$1.der"
}
root danger-test-root "/CN=mec TEST root CA - DO NOT TRUST"
issue danger-test-intermediate "/CN=mec TEST intermediate CA - DO NOT TRUST" danger-test-root ca
issue danger-test-leaf "/CN=mec TEST SD key - DO NOT TRUST" danger-test-intermediate leaf
issue danger-test-not-ca "/CN=mec TEST not a CA - DO NOT TRUST" danger-test-root not_ca
issue danger-test-leaf-under-not-ca "/CN=mec TEST SD key under a non-CA - DO NOT TRUST" danger-test-not-ca leaf
issue danger-test-leaf-sign-only "/CN=mec TEST SD key without key agreement - DO NOT TRUST" danger-test-intermediate leaf_sign_only
issue danger-test-leaf-unknown-critical "/CN=mec TEST SD key, unknown critical ext - DO NOT TRUST" danger-test-intermediate leaf_unknown_critical
root danger-test-other-root "/CN=mec TEST unrelated CA - DO NOT TRUST"
openssl pkey -in "$tmp/danger-test-root.key" -pubout -outform DER -out danger-test-root-spki.der
