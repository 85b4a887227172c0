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
ensure_mariadb
log "NATS on 127.0.0.1:$VIGIA_NATS_PORT and MariaDB on 127.0.0.1:$VIGIA_MYSQL_PORT are up"
