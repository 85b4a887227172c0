#!/usr/bin/env bash
# Makes a private CA and a NATS server certificate signed by it, for TLS on
# every client connection (publishers, the sink, vigiactl and vigia-auth
# verify the server with --nats-ca <dir>/ca.pem).
#
#   scripts/tls-certs.sh --dir /etc/vigia/tls --name nats.example --ip 10.0.0.2
#
# Writes ca.pem, ca-key.pem (keep it offline after use), server.pem and
# server-key.pem. An existing CA in --dir is reused, so running it again
# renews the server certificate only. To use your own CA, put its ca.pem and
# ca-key.pem in --dir first. Needs openssl.
set -euo pipefail

dir='' names=() ips=() days=825
usage() { echo "usage: $0 --dir DIR [--name DNS]... [--ip ADDR]... [--days N]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=${2:?}; shift 2 ;;
    --name) names+=("${2:?}"); shift 2 ;;
    --ip) ips+=("${2:?}"); shift 2 ;;
    --days) days=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$dir" ] || usage
[ ${#names[@]} -gt 0 ] || names=(localhost)
[ ${#ips[@]} -gt 0 ] || ips=(127.0.0.1)
mkdir -p "$dir"
umask 077

if [ ! -f "$dir/ca.pem" ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days 3650 \
    -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" -subj "/CN=vigia NATS CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

san=
for n in "${names[@]}"; do san+="${san:+,}DNS:$n"; done
for i in "${ips[@]}"; do san+="${san:+,}IP:$i"; done
openssl req -newkey rsa:3072 -nodes -sha256 -keyout "$dir/server-key.pem" -out "$dir/server.csr" \
  -subj "/CN=${names[0]}" 2>/dev/null
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
  -days "$days" -sha256 -out "$dir/server.pem" \
  -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' "$san") 2>/dev/null
rm -f "$dir/server.csr" "$dir/ca.srl"
chmod 644 "$dir/ca.pem" "$dir/server.pem"
echo "tls-certs: $dir/server.pem for $san, signed by $dir/ca.pem" >&2
