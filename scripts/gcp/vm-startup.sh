#!/usr/bin/env bash
# Startup script of every vigia VM on Compute Engine (scripts/gcp/up puts it in
# the central VM's metadata and in the fleet's instance template). Google's
# guest agent runs it as root at every boot; its output goes to the serial
# console, each line starting with "vigia-startup:".
#
# Instance metadata says what to do (no secret is ever in metadata):
#   vigia-role            central | fleet | nats
#   vigia-source          gs://… the source archive (docker compose stack,
#                         install script, kernel module)
#   vigia-nats-ca         (every role) the CA certificate the NATS server's
#                         certificate is signed by (public)
#   vigia-nats-cert       (central, nats) the NATS server certificate (public)
#   vigia-nats-key-secret (central, nats) Secret Manager secret holding its key
#   vigia-auth-issuer-secret, vigia-auth-service-secret
#                         (central) secrets holding vigia-auth's seeds
#   vigia-auth-conf       (nats) the auth callout block (public keys only)
#   vigia-gce-audience    (central, fleet) the audience of the fleet's
#                         instance identity tokens: vigia's NATS endpoint
#   vigia-grafana-secret  (central) secret holding Grafana's admin password
#   vigia-publisher       (fleet) gs://… the release vigia-publisher binary
#   vigia-central-ip      (fleet) the central VM's internal IP
#   vigia-interval        (fleet) sampling interval, default 1s
#   vigia-nats-urls       (fleet) every NATS node, when NATS is a cluster
#   vigia-nats-routes     (central, nats) the cluster's routes, when it is one
#   vigia-nats-name       (nats) this node's name, nats-2 or nats-3
#   vigia-database-host   (central) Cloud SQL's private IP, instead of MariaDB
#   vigia-sql-sink-secret, vigia-sql-grafana-secret
#                         (central, with vigia-database-host) their passwords
#
# No NATS secret is shared: a fleet VM reads no secret at all (its publisher
# proves the VM with the instance identity token, fresh at every connect,
# and verifies the server with the CA); the central VM's vigia-auth checks
# those tokens against Google's keys, this project and the audience.
#
# Only curl, tar and coreutils are needed: Cloud Storage and Secret Manager are
# read through their REST APIs with the token of the VM's service account,
# from the metadata server.
#
# For tests, every outside dependency can be moved: VIGIA_ROOT prefixes every
# path written, VIGIA_METADATA_URL / VIGIA_STORAGE_URL / VIGIA_SECRETS_URL
# point the three services elsewhere, VIGIA_RETRY_DELAY shortens waits.
set -euo pipefail

ROOT=${VIGIA_ROOT:-}
METADATA_URL=${VIGIA_METADATA_URL:-http://metadata.google.internal/computeMetadata/v1}
STORAGE_URL=${VIGIA_STORAGE_URL:-https://storage.googleapis.com}
SECRETS_URL=${VIGIA_SECRETS_URL:-https://secretmanager.googleapis.com}
RETRY_DELAY=${VIGIA_RETRY_DELAY:-10}
STATE=$ROOT/opt/vigia

log() { printf 'vigia-startup: %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

# retry N COMMAND...: a fresh deployment races IAM: the bindings up made a
# moment ago can take a few minutes to reach Cloud Storage and Secret Manager,
# which answer 403 meanwhile. Retry for a while rather than give up.
retry() {
  local tries=$1 i
  shift
  for ((i = 1; ; i++)); do
    "$@" && return 0
    [ "$i" -lt "$tries" ] || return 1
    sleep "$RETRY_DELAY"
  done
}

http() { curl -fsS --retry 5 --retry-connrefused --retry-delay 2 --max-time 300 "$@"; }

metadata() { http -H 'Metadata-Flavor: Google' "$METADATA_URL/$1"; }

# attribute KEY [DEFAULT]: an instance metadata attribute; without DEFAULT it
# must exist. (Trailing newlines are dropped: files add theirs back.)
attribute() {
  local value
  if value=$(http -H 'Metadata-Flavor: Google' "$METADATA_URL/instance/attributes/$1" 2>/dev/null); then
    printf '%s' "$value"
  elif [ $# -ge 2 ]; then
    printf '%s' "$2"
  else
    fail "instance metadata attribute $1 is missing"
  fi
}

access_token() {
  metadata instance/service-accounts/default/token \
    | sed -n 's/.*"access_token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p'
}

# gcs_get gs://BUCKET/OBJECT DEST: downloads through the JSON API, atomically.
gcs_get_once() {
  local path=${1#gs://} dest=$2 token
  local bucket=${path%%/*} object=${path#*/}
  token=$(access_token) || return 1
  http -H "Authorization: Bearer $token" -o "$dest.part" \
    "$STORAGE_URL/storage/v1/b/$bucket/o/${object//\//%2F}?alt=media" || return 1
  mv "$dest.part" "$dest"
}
gcs_get() { retry 30 gcs_get_once "$@" || fail "cannot download $1"; }

# secret NAME: prints the latest version of a Secret Manager secret.
secret_once() {
  local token project data
  token=$(access_token) || return 1
  project=$(metadata project/project-id) || return 1
  data=$(http -H "Authorization: Bearer $token" \
    "$SECRETS_URL/v1/projects/$project/secrets/$1/versions/latest:access" \
    | sed -n 's/.*"data"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p') || return 1
  [ -n "$data" ] || return 1
  base64 -d <<<"$data"
}
secret() {
  local value
  value=$(retry 30 secret_once "$1") || fail "cannot read secret $1"
  printf '%s' "$value"
}

# write_file PATH MODE CONTENT: PATH holds CONTENT and a newline, with MODE
# from its creation on (a secret is never readable by others, even briefly).
write_file() {
  local path=$1 mode=$2 content=$3
  mkdir -p "$(dirname "$path")"
  install -m "$mode" /dev/null "$path.new"
  printf '%s\n' "$content" >"$path.new"
  mv -f "$path.new" "$path"
}

# Unpacks the source archive into $STATE/src, replacing the previous one.
install_source() {
  mkdir -p "$STATE"
  gcs_get "$(attribute vigia-source)" "$STATE/vigia-source.tar.gz"
  rm -rf "$STATE/src.new"
  mkdir -p "$STATE/src.new"
  tar -xzf "$STATE/vigia-source.tar.gz" -C "$STATE/src.new"
  rm -rf "$STATE/src"
  mv "$STATE/src.new" "$STATE/src"
  log "source unpacked in $STATE/src"
}

# ---- the central VM: Docker and the compose stack ---------------------------
setup_central() {
  if ! command -v docker >/dev/null 2>&1; then
    log "installing Docker from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    retry 5 apt-get update -q
    retry 5 apt-get install -y -q docker.io docker-compose
  fi
  systemctl enable --now docker

  local compose=(docker compose)
  "${compose[@]}" version >/dev/null 2>&1 || compose=(docker-compose)

  # What the stack's NATS and vigia-auth need, in the layout of its secrets
  # directory (scripts/stack-secrets.sh, which the compose `secrets` service
  # runs, takes the given CA without its key and the given keys as they are,
  # and adds the sink's enrolled key and the registry). Outside the source
  # tree, which is replaced at every boot: the registry of enrolled operators
  # and the sink's key stay. Written at every boot, so a rotated secret takes
  # effect with a reboot.
  # (Each value is read into a variable first: a failed read then stops the
  # boot, where inside a command's arguments it would not.)
  local secrets=$STATE/secrets value
  value=$(attribute vigia-nats-ca)
  write_file "$secrets/tls/ca.pem" 644 "$value"
  value=$(attribute vigia-nats-cert)
  write_file "$secrets/tls/server.pem" 644 "$value"
  value=$(secret "$(attribute vigia-nats-key-secret)")
  write_file "$secrets/tls/server-key.pem" 600 "$value"
  value=$(secret "$(attribute vigia-auth-issuer-secret)")
  write_file "$secrets/auth/issuer.nk" 600 "$value"
  value=$(secret "$(attribute vigia-auth-service-secret)")
  write_file "$secrets/auth/service.nk" 600 "$value"
  value=
  chmod 700 "$secrets/tls" "$secrets/auth"
  # Compose reads .env from the project directory, root only.
  local grafana_password gce_audience project
  grafana_password=$(secret "$(attribute vigia-grafana-secret)")
  gce_audience=$(attribute vigia-gce-audience)
  project=$(metadata project/project-id)
  # The database passwords never leave this VM: made on the first boot and
  # kept, since the MariaDB volume is initialised with them.
  local db_secrets=$STATE/db-secrets.env
  if [ ! -s "$db_secrets" ]; then
    (
      umask 077
      for name in VIGIA_MYSQL_ROOT_PASSWORD VIGIA_SINK_DB_PASSWORD VIGIA_GRAFANA_DB_PASSWORD; do
        printf '%s=%s\n' "$name" "$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)"
      done >"$db_secrets"
    )
  fi
  # A NATS cluster (up --nats-nodes 3): this VM's nats is node 1.
  # Compose files beyond docker-compose.yml, when there are any.
  local routes db_host files=() services=()
  routes=$(attribute vigia-nats-routes "")
  db_host=$(attribute vigia-database-host "")
  if [ -n "$routes" ]; then
    files+=(-f docker-compose.gcp-cluster.yml)
  fi
  if [ -n "$db_host" ]; then
    files+=(-f docker-compose.cloud-sql.yml)
  fi
  [ ${#files[@]} -eq 0 ] || files=(-f docker-compose.yml "${files[@]}")
  # Cloud SQL (up --cloud-sql): the sink's and Grafana's passwords come from
  # Secret Manager, and the mysql service is not started.
  local sql_sink_password='' sql_grafana_password=''
  if [ -n "$db_host" ]; then
    services=(secrets nats auth sink grafana)
    sql_sink_password=$(secret "$(attribute vigia-sql-sink-secret)")
    sql_grafana_password=$(secret "$(attribute vigia-sql-grafana-secret)")
  fi
  (
    umask 077
    {
      printf 'VIGIA_GRAFANA_ADMIN_PASSWORD=%s\nVIGIA_SECRETS_DIR=%s\n' "$grafana_password" "$secrets"
      # The fleet's identity tokens: this audience, this project only.
      printf 'VIGIA_GCE_AUDIENCE=%s\nVIGIA_GCE_PROJECTS=%s\n' "$gce_audience" "$project"
      if [ -n "$db_host" ]; then
        # The MariaDB root password stays (compose requires one), unused.
        grep '^VIGIA_MYSQL_ROOT_PASSWORD=' "$db_secrets"
        printf 'VIGIA_SINK_DB_PASSWORD=%s\nVIGIA_GRAFANA_DB_PASSWORD=%s\nVIGIA_DB_HOST=%s\n' \
          "$sql_sink_password" "$sql_grafana_password" "$db_host"
      else
        cat "$db_secrets"
      fi
      if [ -n "$routes" ]; then
        local own_ip route ip urls=nats://nats:4222 route_list=()
        own_ip=$(metadata instance/network-interfaces/0/ip)
        # The sink reaches node 1 inside the compose network, the others by IP.
        IFS=, read -r -a route_list <<<"$routes"
        for route in "${route_list[@]}"; do
          ip=${route#nats-route://}
          ip=${ip%:6222}
          [ "$ip" = "$own_ip" ] || urls="$urls,nats://$ip:4222"
        done
        printf 'VIGIA_NATS_ROUTES=%s\nVIGIA_NATS_ADVERTISE=%s\nVIGIA_NATS_CLUSTER_URLS=%s\n' \
          "$routes" "$own_ip" "$urls"
      fi
    } >"$STATE/src/.env"
  )

  log "starting the compose stack (the first boot builds the images)"
  # A fixed project name keeps the same containers and volumes (the database)
  # across boots, whatever the directory is called.
  (cd "$STATE/src" && "${compose[@]}" ${files[@]+"${files[@]}"} -p vigia up -d --build ${services[@]+--no-deps "${services[@]}"})
  if [ -n "$db_host" ]; then
    # Grafana's user reads, and only reads: Cloud SQL makes every user a
    # cloudsqlsuperuser; the sink's user takes that back from Grafana's.
    MYSQL_PWD=$sql_sink_password docker run --rm --network host -e MYSQL_PWD mysql:8.0 \
      mysql -h "$db_host" -u vigia_sink -e "REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'vigia_grafana'@'%'; GRANT SELECT ON vigia.* TO 'vigia_grafana'@'%';" \
      || log "could not restrict vigia_grafana to SELECT on Cloud SQL (retried at the next boot)"
  fi
  log "compose stack is up: Grafana on :3000, NATS on :4222${routes:+ (node 1 of 3)}${db_host:+, database on Cloud SQL at $db_host}"
}

# ---- a NATS node of a cluster (up --nats-nodes 3): nats-server in Docker ----
setup_nats() {
  if ! command -v docker >/dev/null 2>&1; then
    log "installing Docker from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    retry 5 apt-get update -q
    retry 5 apt-get install -y -q docker.io
  fi
  systemctl enable --now docker
  local name routes image conf=$STATE/nats
  name=$(attribute vigia-nats-name)
  routes=$(attribute vigia-nats-routes)
  # The version the tests run and compose pins (auth callout needs >= 2.10).
  image=nats:$(tr -d '[:space:]' <"$STATE/src/nats/nats-server-auth.version")-alpine
  # Secure as node 1 on the central VM (nats-cluster-secure.conf): the server
  # certificate, its key (root-only, never on a command line) and the auth
  # callout block in secrets/ beside the config; host networking, so the node
  # advertises the VM's IP. The old token file of an earlier release goes.
  mkdir -p "$conf"
  rm -f "$conf/auth.conf" "$conf/node.conf"
  install -m 644 "$STATE/src/nats/cluster/nats-cluster.conf" "$STATE/src/nats/cluster/nats-cluster-secure.conf" "$conf/"
  local value
  value=$(attribute vigia-nats-cert)
  write_file "$conf/secrets/server.pem" 644 "$value"
  value=$(attribute vigia-auth-conf)
  write_file "$conf/secrets/auth.conf" 644 "$value"
  value=$(secret "$(attribute vigia-nats-key-secret)")
  write_file "$conf/secrets/server-key.pem" 600 "$value"
  value=
  chmod 700 "$conf/secrets"
  docker rm -f vigia-nats >/dev/null 2>&1 || true
  docker run -d --name vigia-nats --restart unless-stopped --network host \
    -v "$conf:/etc/nats:ro" -v vigia-nats-data:/data "$image" \
    -c /etc/nats/nats-cluster-secure.conf --name "$name" --routes "$routes"
  log "NATS node $name is up, routes $routes"
}

# ---- a fleet VM: the kernel module if it can, and the publisher -------------
load_kernel_module() {
  local kmod=$STATE/src/kernel-module release config
  release=$(uname -r)
  config=$ROOT/boot/config-$release
  if [ ! -f "$kmod/install.sh" ]; then
    log "kernel module: not in this release ($kmod/install.sh absent); the publisher reads procfs"
  elif ! grep -qx 'CONFIG_RUST=y' "$config" 2>/dev/null; then
    log "kernel module: kernel $release has no Rust support (CONFIG_RUST=y not in $config); the publisher reads procfs"
  elif (cd "$kmod" && bash ./install.sh); then
    log "kernel module: built and loaded for kernel $release"
  else
    log "kernel module: install.sh failed for kernel $release; the publisher falls back to procfs"
  fi
}

setup_fleet() {
  local central_ip interval
  central_ip=$(attribute vigia-central-ip)
  interval=$(attribute vigia-interval 1s)
  gcs_get "$(attribute vigia-publisher)" "$STATE/vigia-publisher"
  chmod 0755 "$STATE/vigia-publisher"

  # Before the publisher starts, so that it finds the module if there is one.
  load_kernel_module

  # No secret: the publisher proves this VM with its instance identity token
  # (fresh at every connect; vigia-auth derives the host from the verified
  # instance name) and verifies NATS with the CA from metadata. Every node of
  # a NATS cluster when there is one, else the central VM.
  local nats_urls audience ca_pem
  nats_urls=$(attribute vigia-nats-urls "nats://$central_ip:4222")
  audience=$(attribute vigia-gce-audience)
  ca_pem=$(attribute vigia-nats-ca)
  write_file "$STATE/nats-ca.pem" 644 "$ca_pem"
  VIGIA_ROOT=$ROOT bash "$STATE/src/scripts/install-publisher.sh" --binary "$STATE/vigia-publisher" \
    --nats-url "$nats_urls" --interval "$interval" --nats-ca "$STATE/nats-ca.pem" \
    --gce-identity --gce-audience "$audience"
  log "publisher installed, sending to $nats_urls"
}

role=$(attribute vigia-role)
log "role $role"
install_source
case $role in
  central) setup_central ;;
  fleet) setup_fleet ;;
  nats) setup_nats ;;
  *) fail "unknown vigia-role '$role' (central, fleet or nats)" ;;
esac
log "done"
