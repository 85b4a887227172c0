#!/usr/bin/env bash
# Installs vigia-publisher as a systemd service on this machine:
#   /usr/local/bin/vigia-publisher                the binary
#   /etc/systemd/system/vigia-publisher.service   publisher/deploy/vigia-publisher.service
#   /etc/vigia/publisher.env                      its settings, root-only (0600)
#   /etc/vigia/nats-ca.pem                        the CA NATS is verified with (--nats-ca)
# then enables it and (re)starts it when anything changed.
#
# Idempotent: a second run with the same inputs changes nothing and restarts
# nothing. Settings not given keep the value already in the env file, so an
# upgrade is just `install-publisher.sh --binary NEW`.
#
# How the host proves who it is, one of (giving one drops the other from the
# env file, since the publisher refuses both):
#   --gce-identity   on GCE: the VM's instance identity token, no secret here
#                    (what scripts/gcp/vm-startup.sh installs)
#   VIGIA_NATS_TOKEN a shared token (the lab without identities), taken from
#                    the environment, never from the command line, which every
#                    user can read in /proc.
# VIGIA_ROOT prefixes every path written (for tests and image builds).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=${VIGIA_ROOT:-}
UNIT_SRC=$REPO_ROOT/publisher/deploy/vigia-publisher.service
BIN_DEST=$ROOT/usr/local/bin/vigia-publisher
UNIT_DEST=$ROOT/etc/systemd/system/vigia-publisher.service
ENV_FILE=$ROOT/etc/vigia/publisher.env
# As the publisher sees it (without VIGIA_ROOT).
CA_PATH=/etc/vigia/nats-ca.pem

log() { printf 'install-publisher: %s\n' "$*" >&2; }
die() { printf 'install-publisher: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<EOF
usage: scripts/install-publisher.sh [--binary PATH] [--nats-url URL] [--host NAME]
                                    [--interval D] [--procs-interval D] [--nats-ca FILE]
                                    [--gce-identity [--gce-audience AUD]]
                                    [--no-start]
  --binary PATH      the vigia-publisher to install (default: target/release/vigia-publisher)
  --nats-url URL     VIGIA_NATS_URL, e.g. nats://10.20.0.10:4222
  --host NAME        VIGIA_HOST (default: the publisher uses the host name)
  --interval D       VIGIA_INTERVAL, cpu and ram sampling (e.g. 1s)
  --procs-interval D VIGIA_PROCS_INTERVAL (e.g. 5s)
  --nats-ca FILE     the CA of the NATS server's certificate: installed as
                     /etc/vigia/nats-ca.pem, VIGIA_NATS_CA (TLS, server verified)
  --gce-identity     VIGIA_GCE_IDENTITY: prove this GCE VM with its instance
                     identity token; --gce-audience AUD: the audience vigia-auth expects
  --no-start         install only; do not call systemctl
Environment: VIGIA_NATS_TOKEN (the lab's shared token, written to the env file), VIGIA_ROOT.
EOF
}

binary=$REPO_ROOT/target/release/vigia-publisher
start=1 ca_src=''
declare -A settings=()
# Keys removed from the env file: the credentials not chosen.
declare -A dropped=()
credential() {
  local k
  for k in VIGIA_GCE_IDENTITY VIGIA_GCE_AUDIENCE VIGIA_NATS_TOKEN; do
    [ -n "${settings[$k]+set}" ] || dropped[$k]=1
  done
}
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --nats-url) settings[VIGIA_NATS_URL]=${2:?--nats-url needs a value}; shift 2 ;;
    --host) settings[VIGIA_HOST]=${2:?--host needs a value}; shift 2 ;;
    --interval) settings[VIGIA_INTERVAL]=${2:?--interval needs a value}; shift 2 ;;
    --procs-interval) settings[VIGIA_PROCS_INTERVAL]=${2:?--procs-interval needs a value}; shift 2 ;;
    --nats-ca) ca_src=${2:?--nats-ca needs a file}; settings[VIGIA_NATS_CA]=$CA_PATH; shift 2 ;;
    --gce-identity) settings[VIGIA_GCE_IDENTITY]=true; shift ;;
    --gce-audience) settings[VIGIA_GCE_AUDIENCE]=${2:?--gce-audience needs a value}; shift 2 ;;
    --no-start) start=; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
if [ -n "${VIGIA_NATS_TOKEN:-}" ]; then
  settings[VIGIA_NATS_TOKEN]=$VIGIA_NATS_TOKEN
fi
given=0
for k in VIGIA_GCE_IDENTITY VIGIA_NATS_TOKEN; do
  [ -z "${settings[$k]+set}" ] || given=$((given + 1))
done
[ "$given" -le 1 ] || die "give --gce-identity or VIGIA_NATS_TOKEN, not both"
[ -z "${settings[VIGIA_GCE_AUDIENCE]+set}" ] || [ -n "${settings[VIGIA_GCE_IDENTITY]+set}" ] ||
  die "--gce-audience goes with --gce-identity"
[ "$given" -eq 0 ] || credential
[ -z "$ca_src" ] || [ -f "$ca_src" ] || die "--nats-ca $ca_src: no such file"

[ -f "$binary" ] || die "no publisher binary at $binary: build it with 'cargo build --release -p vigia-publisher' or pass --binary"
[ -f "$UNIT_SRC" ] || die "unit file $UNIT_SRC is missing"
[ "$(id -u)" -eq 0 ] || [ -n "$ROOT" ] || die "run as root"

changed=
unit_changed=

# install_file SRC DEST MODE: replaces DEST atomically when its content differs.
install_file() {
  local src=$1 dest=$2 mode=$3
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    return 1
  fi
  mkdir -p "$(dirname "$dest")"
  install -m "$mode" "$src" "$dest.new"
  mv -f "$dest.new" "$dest"
  log "installed $dest"
}

if install_file "$binary" "$BIN_DEST" 0755; then changed=1; fi
if install_file "$UNIT_SRC" "$UNIT_DEST" 0644; then changed=1; unit_changed=1; fi
# Public, read by the publisher's dynamic user.
if [ -n "$ca_src" ] && install_file "$ca_src" "$ROOT$CA_PATH" 0644; then changed=1; fi

# The env file: existing lines, with the given settings replacing theirs.
mkdir -p "$(dirname "$ENV_FILE")"
chmod 0755 "$(dirname "$ENV_FILE")"
new_env=$(mktemp)
trap 'rm -f "$new_env"' EXIT
chmod 0600 "$new_env"
if [ -f "$ENV_FILE" ]; then
  # Keep every line whose key is not being set.
  while IFS= read -r line || [ -n "$line" ]; do
    key=${line%%=*}
    if [ -z "$key" ] || { [ -z "${settings[$key]+set}" ] && [ -z "${dropped[$key]+set}" ]; }; then
      printf '%s\n' "$line"
    fi
  done <"$ENV_FILE" >"$new_env"
else
  printf '# vigia-publisher settings, read by systemd (see scripts/install-publisher.sh)\n' >"$new_env"
fi
for key in $(printf '%s\n' "${!settings[@]}" | sort); do
  value=${settings[$key]}
  # systemd's EnvironmentFile takes one line per variable; refuse what would
  # break out of it.
  case $value in
    *$'\n'* | *'"'* | *"'"* | *\\* ) die "$key contains a newline, a quote or a backslash" ;;
  esac
  printf '%s=%s\n' "$key" "$value" >>"$new_env"
done
if [ -f "$ENV_FILE" ] && cmp -s "$new_env" "$ENV_FILE"; then
  chmod 0600 "$ENV_FILE"
else
  install -m 0600 "$new_env" "$ENV_FILE.new"
  mv -f "$ENV_FILE.new" "$ENV_FILE"
  log "wrote $ENV_FILE"
  changed=1
fi
grep -q '^VIGIA_NATS_URL=' "$ENV_FILE" || log "note: no VIGIA_NATS_URL in $ENV_FILE: the publisher uses nats://127.0.0.1:4222"

if [ -z "$start" ]; then
  log "installed; not started (--no-start)"
  exit 0
fi
[ -z "$unit_changed" ] || systemctl daemon-reload
systemctl enable --quiet vigia-publisher.service
if [ -n "$changed" ]; then
  systemctl restart vigia-publisher.service
  log "vigia-publisher (re)started"
else
  systemctl start vigia-publisher.service   # no-op when it runs
  log "nothing changed; vigia-publisher left running"
fi
