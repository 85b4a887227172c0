#!/usr/bin/env bash
# Makes everything the secure compose stack (docker-compose.secure.yml) mounts, under
# ./secrets (git-ignored), once; running it again keeps existing keys and the
# CA and renews the server certificate only:
#   secrets/tls/        CA and NATS server certificate (scripts/tls-certs.sh);
#                       give the names/addresses the fleet reaches NATS by
#   secrets/auth/       vigia-auth's issuer.nk and service.nk, and auth.conf
#                       (the server's auth callout block) from `vigia-auth init`
#   secrets/identities  the registry vigia-auth reads at every connect
#   secrets/sink.nk     the sink's enrolled key
#   secrets/demo-host.nk  the demo publisher's (profile "demo") host key
#
#   cargo build --release --locked -p vigia-auth -p vigiactl
#   scripts/stack-secrets.sh [--name nats.example]... [--ip 10.0.0.2]... [--demo-host NAME]
#
# Binaries come from $VIGIA_BIN (default target/release). The containers run
# as uid 10001: run as root to hand them the keys, or chown them yourself.
set -euo pipefail
cd "$(dirname "$0")/.." || exit
dir=${VIGIA_SECRETS_DIR:-secrets}
bin=${VIGIA_BIN:-target/release}
demo_host=${VIGIA_DEMO_HOST:-vigia-demo}
# The sink and vigia-auth reach the server as "nats" inside compose (and
# the cluster overlay's other nodes as nats-2, nats-3).
tls_args=(--name nats --name nats-2 --name nats-3 --name localhost --ip 127.0.0.1)
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

mkdir -p "$dir/auth"
bash scripts/tls-certs.sh --dir "$dir/tls" "${tls_args[@]}"
"$bin/vigia-auth" init --dir "$dir/auth" >"$dir/auth/auth.conf.new"
mv "$dir/auth/auth.conf.new" "$dir/auth/auth.conf"
chmod 644 "$dir/auth/auth.conf"
touch "$dir/identities"
[ -f "$dir/sink.nk" ] ||
  "$bin/vigiactl" enroll --sink sink --registry "$dir/identities" --out "$dir/sink.nk" >/dev/null
[ -f "$dir/demo-host.nk" ] ||
  "$bin/vigiactl" enroll --host "$demo_host" --registry "$dir/identities" --out "$dir/demo-host.nk" >/dev/null
if [ "$(id -u)" = 0 ]; then
  # Only the containers that read them: vigia-auth (keys, registry), the
  # sink and the demo publisher (their keys). NATS reads tls/ and auth.conf.
  chown 10001:10001 "$dir/auth/issuer.nk" "$dir/auth/service.nk" "$dir/identities" "$dir/sink.nk" "$dir/demo-host.nk"
else
  echo "stack-secrets: not root: make $dir/auth/*.nk, $dir/identities and $dir/*.nk readable by uid 10001" >&2
fi
echo "stack-secrets: done in $dir; enrol more: $bin/vigiactl enroll --host H --registry $dir/identities --out H.nk" >&2
