#!/usr/bin/env bash
# Development keys and certificates (openssl CLI). NEVER for production.
#
#   scripts/dev-keys.sh DIR
#
# Idempotent: what exists and is still valid is kept; a missing or invalid piece is (re)made,
# and every certificate is re-issued when the CA is new, no longer signs it or it expires
# within 30 days. Private keys are written 0600.
#
# Outputs:
#   DIR/jwt-dev.key          EC P-256 private key (PKCS#8) signing development tokens (ES256):
#                              parcoursctl token --key DIR/jwt-dev.key --kid jwt-dev \
#                                --principal operator:OP-1 --issuer parcours-dev \
#                                --audience parcours-gateway
#   DIR/jwt-dev.jwks.json    its public key as a JWKS, kid "jwt-dev" (gateway auth.jwt_keys_file)
#   DIR/jwt-dev.pub.pem      the same public key as PEM with a "# kid: jwt-dev" line
#   DIR/tls/ca.pem, ca.key   the development CA (EC P-256, 10 years)
#   DIR/tls/gateway.pem/.key gateway certificate, client AND server: URI SAN
#                            spiffe://parcours.fr/service/gateway, DNS gateway + localhost,
#                            IP 127.0.0.1; extendedKeyUsage serverAuth, clientAuth
#   DIR/tls/<svc>.pem/.key   for svc in referential-svc evaluation-svc cep-svc: DNS SANs <svc>
#                            and localhost, IP SAN 127.0.0.1, URI SAN
#                            spiffe://parcours.fr/service/<svc> (evaluation-svc is itself a
#                            client of referential-svc); serverAuth, clientAuth
#
# Backend config (platform/tls.h), e.g. referential-svc:
#   server.tls_cert_file: DIR/tls/referential-svc.pem
#   server.tls_key_file: DIR/tls/referential-svc.key
#   server.tls_client_ca_file: DIR/tls/ca.pem
#   server.allowed_client_identities: spiffe://parcours.fr/service/gateway,spiffe://parcours.fr/service/evaluation-svc
# and its callers (evaluation-svc shown; the gateway uses its own certificate):
#   referential.address: 127.0.0.1:PORT
#   referential.tls_ca_file: DIR/tls/ca.pem
#   referential.tls_cert_file: DIR/tls/evaluation-svc.pem
#   referential.tls_key_file: DIR/tls/evaluation-svc.key
#   referential.tls_server_name: referential-svc   (when the address is not a name in the cert)
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
DIR=$1
TLS="$DIR/tls"
SERVICES=(referential-svc evaluation-svc cep-svc)
SPIFFE=spiffe://parcours.fr/service
umask 077
mkdir -p "$DIR" "$TLS"

command -v openssl >/dev/null || { echo "dev-keys: openssl is required" >&2; exit 1; }

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

new_ec_key() {  # new_ec_key FILE
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  chmod 600 "$1"
}

key_ok() {  # key_ok FILE: an EC private key that parses
  [ -s "$1" ] && openssl pkey -in "$1" -noout 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# Token signing key.
if ! key_ok "$DIR/jwt-dev.key"; then
  echo "dev-keys: new token signing key $DIR/jwt-dev.key"
  new_ec_key "$DIR/jwt-dev.key"
  rm -f "$DIR/jwt-dev.jwks.json" "$DIR/jwt-dev.pub.pem"
fi
# The public forms are derived every time (cheap, always in step with the key).
pub_tmp=$(mktemp)
der_tmp=$(mktemp)
trap 'rm -f "$pub_tmp" "$der_tmp"' EXIT
openssl pkey -in "$DIR/jwt-dev.key" -pubout -out "$pub_tmp" 2>/dev/null
{ echo "# kid: jwt-dev"; cat "$pub_tmp"; } > "$DIR/jwt-dev.pub.pem.tmp"
# The SubjectPublicKeyInfo of a P-256 key ends with the 65-byte point 04 || X || Y.
openssl pkey -in "$DIR/jwt-dev.key" -pubout -outform DER -out "$der_tmp" 2>/dev/null
[ "$(tail -c 65 "$der_tmp" | head -c 1 | od -An -tx1 | tr -d ' \n')" = "04" ] \
  || { echo "dev-keys: unexpected public key encoding" >&2; exit 1; }
x=$(tail -c 64 "$der_tmp" | head -c 32 | b64url)
y=$(tail -c 32 "$der_tmp" | b64url)
printf '{"keys":[{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":"jwt-dev","x":"%s","y":"%s"}]}\n' \
  "$x" "$y" > "$DIR/jwt-dev.jwks.json.tmp"
# Replaced only when different: the gateway reloads its keys file when it changes.
for f in "$DIR/jwt-dev.pub.pem" "$DIR/jwt-dev.jwks.json"; do
  chmod 644 "$f.tmp"
  if cmp -s "$f.tmp" "$f"; then rm -f "$f.tmp"; else mv "$f.tmp" "$f"; fi
done

# ---------------------------------------------------------------------------------------------
# CA.
ca_new=0
if ! key_ok "$TLS/ca.key" || [ ! -s "$TLS/ca.pem" ] \
   || ! openssl x509 -in "$TLS/ca.pem" -noout -checkend $((30 * 86400)) >/dev/null 2>&1; then
  echo "dev-keys: new development CA $TLS/ca.pem"
  new_ec_key "$TLS/ca.key"
  openssl req -new -x509 -key "$TLS/ca.key" -sha256 -days 3650 \
    -subj "/O=Parcours development/CN=Parcours dev CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$TLS/ca.pem" 2>/dev/null
  chmod 644 "$TLS/ca.pem"
  ca_new=1
fi

# issue NAME SANS: a leaf certificate for client and server use, signed by the CA.
issue() {
  local name=$1 sans=$2
  local cert="$TLS/$name.pem" key="$TLS/$name.key"
  if [ "$ca_new" = 0 ] && key_ok "$key" && [ -s "$cert" ] \
     && openssl verify -CAfile "$TLS/ca.pem" "$cert" >/dev/null 2>&1 \
     && openssl x509 -in "$cert" -noout -checkend $((30 * 86400)) >/dev/null 2>&1 \
     && [ "$(openssl x509 -in "$cert" -noout -pubkey 2>/dev/null)" = "$(openssl pkey -in "$key" -pubout 2>/dev/null)" ]; then
    return 0
  fi
  echo "dev-keys: issuing $cert"
  key_ok "$key" || new_ec_key "$key"
  local csr ext
  csr=$(mktemp)
  ext=$(mktemp)
  cat > "$ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
subjectAltName=$sans
EOF
  openssl req -new -key "$key" -subj "/O=Parcours development/CN=$name" -out "$csr" 2>/dev/null
  openssl x509 -req -in "$csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 -extfile "$ext" \
    -out "$cert" 2>/dev/null
  chmod 644 "$cert"
  rm -f "$csr" "$ext"
}

issue gateway "URI:$SPIFFE/gateway,DNS:gateway,DNS:localhost,IP:127.0.0.1"
for svc in "${SERVICES[@]}"; do
  issue "$svc" "URI:$SPIFFE/$svc,DNS:$svc,DNS:localhost,IP:127.0.0.1"
done

echo "dev-keys: ready in $DIR"
