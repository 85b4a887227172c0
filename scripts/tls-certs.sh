#!/usr/bin/env bash
# Makes a private CA and a NATS server certificate signed by it, for TLS on
# every client connection (publishers, the sink, vigiactl and vigia-auth
# verify the server with --nats-ca <dir>/ca.pem).
#
#   scripts/tls-certs.sh --dir /etc/vigia/tls --name nats.example --ip 10.0.0.2
#
# Writes ca.pem, ca-key.pem (keep it offline after use), server.pem and
# server-key.pem. Running it again changes only what must change, so it can
# run at every start (the compose `secrets` service does):
#   - an existing CA in --dir is reused; to use your own, put its ca.pem and
#     ca-key.pem there first;
#   - the server certificate is kept while it verifies against the CA, names
#     exactly the --name and --ip given, and has 30 days left; otherwise (or
#     with --renew) a new one is issued;
#   - a CA given without its key (ca.pem, server.pem and server-key.pem put
#     in --dir, as scripts/gcp/up hands the central VM its certificate) is
#     used as it is: nothing can be issued without the key, so the server
#     certificate must verify against that CA.
# Prints (stderr) whether it issued or kept. Needs openssl.
set -euo pipefail

dir='' names=() ips=() days=825 renew=
usage() { echo "usage: $0 --dir DIR [--name DNS]... [--ip ADDR]... [--days N] [--renew]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=${2:?}; shift 2 ;;
    --name) names+=("${2:?}"); shift 2 ;;
    --ip) ips+=("${2:?}"); shift 2 ;;
    --days) days=${2:?}; shift 2 ;;
    --renew) renew=1; shift ;;
    *) usage ;;
  esac
done
[ -n "$dir" ] || usage
[ ${#names[@]} -gt 0 ] || names=(localhost)
[ ${#ips[@]} -gt 0 ] || ips=(127.0.0.1)
mkdir -p "$dir"
umask 077

san=
for n in "${names[@]}"; do san+="${san:+,}DNS:$n"; done
for i in "${ips[@]}"; do san+="${san:+,}IP:$i"; done

# server_ok: server.pem verifies against ca.pem, matches server-key.pem, and
# is valid for 30 more days.
server_ok() {
  [ -f "$dir/server.pem" ] && [ -f "$dir/server-key.pem" ] &&
    openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" >/dev/null 2>&1 &&
    openssl x509 -in "$dir/server.pem" -noout -checkend $((30 * 86400)) >/dev/null 2>&1 &&
    [ "$(openssl x509 -in "$dir/server.pem" -noout -pubkey 2>/dev/null)" = \
      "$(openssl pkey -in "$dir/server-key.pem" -pubout 2>/dev/null)" ]
}
# The names the certificate holds, as this script writes them.
names_of() {
  openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | tail -n +2 |
    tr -d ' \n' | sed 's/IPAddress:/IP:/g'
}

if [ -f "$dir/ca.pem" ] && [ ! -f "$dir/ca-key.pem" ]; then
  if server_ok; then
    echo "tls-certs: using the given $dir/server.pem ($(names_of "$dir/server.pem")) and CA $dir/ca.pem (no CA key here)" >&2
    exit 0
  fi
  echo "tls-certs: $dir/ca.pem has no ca-key.pem beside it, and $dir/server.pem is missing, expired or not signed by it" >&2
  exit 1
fi

if [ ! -f "$dir/ca.pem" ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days 3650 \
    -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" -subj "/CN=vigia NATS CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

if [ -z "$renew" ] && server_ok && [ "$(names_of "$dir/server.pem")" = "$san" ]; then
  echo "tls-certs: kept $dir/server.pem for $san (valid, signed by $dir/ca.pem)" >&2
  exit 0
fi
openssl req -newkey rsa:3072 -nodes -sha256 -keyout "$dir/server-key.pem" -out "$dir/server.csr" \
  -subj "/CN=${names[0]}" 2>/dev/null
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
  -days "$days" -sha256 -out "$dir/server.pem" \
  -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' "$san") 2>/dev/null
rm -f "$dir/server.csr" "$dir/ca.srl"
chmod 644 "$dir/ca.pem" "$dir/server.pem"
echo "tls-certs: $dir/server.pem for $san, signed by $dir/ca.pem" >&2
