#!/usr/bin/env bash
# Makes everything the compose stack's secure NATS needs, in the secrets
# directory (VIGIA_SECRETS_DIR, default ./secrets, git-ignored). The compose
# `secrets` service runs it before NATS starts at every `docker compose up`,
# so a first `up` needs nothing made beforehand; it can also run by hand.
# Nothing that exists is replaced (keys, the registry, the CA), so running it
# again changes nothing, except a server certificate whose names changed or
# that expires within 30 days (scripts/tls-certs.sh decides).
#
#   ca.pem          the CA certificate (0644): every client verifies the NATS
#                   server with it (--nats-ca); give it to the fleet
#   tls/            scripts/tls-certs.sh's directory: the CA with its key and
#                   the server certificate. Yours instead: put ca.pem and
#                   ca-key.pem there (or ca.pem, server.pem and server-key.pem
#                   without the CA key) before the first run
#   nats/           what NATS mounts: auth.conf (from `vigia-auth init`: the
#                   auth callout block), server.pem, server-key.pem
#   auth/           what vigia-auth mounts: issuer.nk, service.nk, the
#                   registry `identities` (read at every connect) and ca.pem
#   sink/           the sink's enrolled key sink.nk, and ca.pem
#   demo/           the demo publisher's (profile "demo") host key host.nk,
#                   enrolled as VIGIA_DEMO_HOST (again when that changes)
# Each service mounts only its own directory: the sink never sees the issuer
# seed, and only this script sees the CA key.
#
#   scripts/stack-secrets.sh [--name nats.example]... [--ip 10.0.0.2]... [--demo-host NAME]
#
# The server certificate always names nats, nats-2, nats-3 (the compose
# services), localhost and 127.0.0.1, plus every --name and --ip, and the
# names and addresses in VIGIA_NATS_TLS_NAMES and VIGIA_NATS_TLS_IPS
# (comma-separated): those the fleet reaches NATS by.
#
# Binaries (vigia-auth, vigiactl) come from $VIGIA_BIN (default
# target/release). vigia-auth, the sink and the publisher run as uid 10001:
# run as root (as the compose service does) to hand them their directories.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.." || exit
dir=${VIGIA_SECRETS_DIR:-secrets}
bin=${VIGIA_BIN:-target/release}
demo_host=${VIGIA_DEMO_HOST:-vigia-demo}
tls_args=(--name nats --name nats-2 --name nats-3 --name localhost --ip 127.0.0.1)
IFS=', ' read -r -a extra_names <<<"${VIGIA_NATS_TLS_NAMES:-}"
IFS=', ' read -r -a extra_ips <<<"${VIGIA_NATS_TLS_IPS:-}"
for n in ${extra_names[@]+"${extra_names[@]}"}; do tls_args+=(--name "$n"); done
for i in ${extra_ips[@]+"${extra_ips[@]}"}; do tls_args+=(--ip "$i"); done
while [ $# -gt 0 ]; do
  case $1 in
    --name | --ip) tls_args+=("$1" "${2:?}"); shift 2 ;;
    --demo-host) demo_host=${2:?}; shift 2 ;;
    *) echo "usage: $0 [--name DNS]... [--ip ADDR]... [--demo-host NAME]" >&2; exit 2 ;;
  esac
done
for b in vigia-auth vigiactl; do
  [ -x "$bin/$b" ] || { echo "stack-secrets: $bin/$b missing (cargo build --release --locked -p vigia-auth -p vigiactl)" >&2; exit 1; }
done

mkdir -p "$dir"
chmod 755 "$dir"
for sub in tls nats auth sink demo; do
  mkdir -p "$dir/$sub"
  chmod 700 "$dir/$sub"
done

bash "$here/tls-certs.sh" --dir "$dir/tls" "${tls_args[@]}"
install -m 644 "$dir/tls/ca.pem" "$dir/ca.pem"
install -m 644 "$dir/tls/server.pem" "$dir/nats/server.pem"
install -m 600 "$dir/tls/server-key.pem" "$dir/nats/server-key.pem"

"$bin/vigia-auth" init --dir "$dir/auth" >"$dir/nats/auth.conf.new"
chmod 644 "$dir/nats/auth.conf.new"
mv "$dir/nats/auth.conf.new" "$dir/nats/auth.conf"

registry=$dir/auth/identities
touch "$registry"
[ -s "$dir/sink/sink.nk" ] ||
  "$bin/vigiactl" enroll --sink sink --registry "$registry" --out "$dir/sink/sink.nk" >/dev/null
if [ ! -s "$dir/demo/host.nk" ] || [ "$(cat "$dir/demo/host.name" 2>/dev/null)" != "$demo_host" ]; then
  old=$(cat "$dir/demo/host.name" 2>/dev/null || true)
  if [ -n "$old" ] && [ "$old" != "$demo_host" ]; then
    "$bin/vigiactl" revoke --host "$old" --registry "$registry" >/dev/null 2>&1 || true
  fi
  "$bin/vigiactl" enroll --host "$demo_host" --registry "$registry" --out "$dir/demo/host.nk" >/dev/null
  printf '%s\n' "$demo_host" >"$dir/demo/host.name"
fi
for sub in auth sink demo; do
  install -m 644 "$dir/ca.pem" "$dir/$sub/ca.pem"
done

if [ "$(id -u)" = 0 ]; then
  # NATS (root in its image) reads nats/; vigia-auth, the sink and the demo
  # publisher (uid 10001) their own directory each.
  chown -R 10001:10001 "$dir/auth" "$dir/sink" "$dir/demo"
else
  echo "stack-secrets: not root: make $dir/auth, $dir/sink and $dir/demo readable by uid 10001" >&2
fi
echo "stack-secrets: done in $dir; enrol more: vigiactl enroll --host H --registry $registry --out H.nk" >&2
