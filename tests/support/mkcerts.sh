#!/usr/bin/env bash
# Make throwaway test certificates in OUTDIR (created if needed). Never commit them.
#
#   tests/support/mkcerts.sh OUTDIR
#
# Writes (all keys ECDSA P-256, PKCS#8 PEM, mode 0600):
#   ca.pem, ca.key                test CA (CA:TRUE, keyCertSign)
#   server.pem, server.key        leaf for localhost, 127.0.0.1, ::1 + the CA (chain), serverAuth, CA:FALSE
#   server-leaf.pem               the same leaf alone
#   expired.pem, expired.key      same names, valid 2020-01-01 .. 2021-01-01 (expired)
#   notyet.pem, notyet.key        same names, valid from 2099-01-01 (not yet valid)
#   wrongname.pem, wrongname.key  signed by the CA, but only for wrong.example
#   selfsigned.pem, selfsigned.key  self-signed leaf for localhost/127.0.0.1/::1 (unknown issuer)
#   client.pem, client.key        clientAuth leaf "tu-test-client" + the CA
#
# Idempotent: if every file is there and server.pem is valid for another hour,
# nothing is done. Quiet unless something fails (then OpenSSL's output is shown).
# Works with OpenSSL 3.0 (no -not_before/-not_after): dated leaves are issued
# with `openssl ca -startdate/-enddate` from a throwaway CA database.
set -euo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out="$1"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

files="ca.pem ca.key server.pem server.key server-leaf.pem expired.pem expired.key
       notyet.pem notyet.key wrongname.pem wrongname.key selfsigned.pem selfsigned.key
       client.pem client.key"
all_there=1
for f in $files; do [ -s "$out/$f" ] || all_there=0; done
if [ "$all_there" = 1 ] && openssl x509 -in "$out/server.pem" -noout -checkend 3600 >/dev/null 2>&1; then
    exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/mkcerts.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log="$work/log"
umask 077

run() { # run a command quietly; show its output if it fails
    if ! "$@" >>"$log" 2>&1; then
        echo "mkcerts: failed: $*" >&2
        cat "$log" >&2
        exit 1
    fi
}

genkey() { run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

cat >"$work/openssl.cnf" <<CNF
[ ca ]
default_ca = testca

[ testca ]
dir              = $work/db
database         = \$dir/index.txt
new_certs_dir    = \$dir/new
serial           = \$dir/serial
certificate      = $out/ca.pem
private_key      = $out/ca.key
default_md       = sha256
policy           = policy_any
unique_subject   = no
copy_extensions  = none
email_in_dn      = no
default_days     = 30

[ policy_any ]
commonName       = supplied

[ req ]
distinguished_name = req_dn
prompt             = no
[ req_dn ]
CN = placeholder

[ v3_ca ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ v3_server ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ v3_wrong ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:wrong.example
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ v3_client ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ v3_self ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier   = hash
CNF
mkdir -p "$work/db/new"
: >"$work/db/index.txt"
# random serial: certificates from two runs never share one
openssl rand -hex 8 >"$work/db/serial"
export OPENSSL_CONF="$work/openssl.cnf"

now_start="$(date -u -d '-1 hour' +%Y%m%d%H%M%SZ)"
now_end="$(date -u -d '+30 days' +%Y%m%d%H%M%SZ)"

# CA
genkey "$work/ca.key"
# self-signed through `openssl ca -selfsign` so that it, too, starts an hour ago (clock skew)
run openssl req -new -config "$work/openssl.cnf" -key "$work/ca.key" \
    -subj "/CN=transporturl test CA" -out "$work/ca.csr"
run openssl ca -batch -notext -selfsign -config "$work/openssl.cnf" -extfile "$work/openssl.cnf" \
    -keyfile "$work/ca.key" -extensions v3_ca -startdate "$now_start" -enddate "$now_end" \
    -in "$work/ca.csr" -out "$work/ca.pem"
cp "$work/ca.key" "$out/ca.key"
cp "$work/ca.pem" "$out/ca.pem"

# leaf NAME CN EXTENSIONS STARTDATE ENDDATE
leaf() {
    local name="$1" cn="$2" ext="$3" start="$4" end="$5"
    genkey "$work/$name.key"
    run openssl req -new -config "$work/openssl.cnf" -key "$work/$name.key" \
        -subj "/CN=$cn" -out "$work/$name.csr"
    run openssl ca -batch -notext -config "$work/openssl.cnf" -extfile "$work/openssl.cnf" \
        -extensions "$ext" -startdate "$start" -enddate "$end" \
        -in "$work/$name.csr" -out "$work/$name.crt"
}

leaf server    localhost          v3_server "$now_start"      "$now_end"
leaf expired   localhost          v3_server 20200101000000Z   20210101000000Z
leaf notyet    localhost          v3_server 20990101000000Z   21000101000000Z
leaf wrongname wrong.example      v3_wrong  "$now_start"      "$now_end"
leaf client    tu-test-client     v3_client "$now_start"      "$now_end"

# self-signed leaf (not a CA): a client that trusts only ca.pem sees an unknown issuer
genkey "$work/selfsigned.key"
run openssl req -new -x509 -config "$work/openssl.cnf" -key "$work/selfsigned.key" \
    -subj "/CN=localhost" -extensions v3_self -days 30 -sha256 -out "$work/selfsigned.crt"

for n in server expired notyet wrongname client; do
    cat "$work/$n.crt" "$work/ca.pem" >"$work/$n.pem"
done
cp "$work/server.crt" "$work/server-leaf.pem"
cp "$work/selfsigned.crt" "$work/selfsigned.pem"

for f in server.pem server.key server-leaf.pem expired.pem expired.key notyet.pem notyet.key \
         wrongname.pem wrongname.key selfsigned.pem selfsigned.key client.pem client.key; do
    cp "$work/$f" "$out/$f.tmp" && mv -f "$out/$f.tmp" "$out/$f"
done
chmod 0644 "$out"/*.pem
chmod 0600 "$out"/*.key
