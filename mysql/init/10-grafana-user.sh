# shellcheck shell=bash
# Sourced (not executed) by the MariaDB image's entrypoint on the first start
# of an empty data volume, after it created the database and the sink's user
# (MARIADB_DATABASE, MARIADB_USER). Adds the read-only user of Grafana's data
# source: SELECT on vigia's database and nothing else, since Grafana runs
# whatever SQL a dashboard editor types.
#
# docker_process_sql is the entrypoint's own client, connected as root.

vigia_sql_string() {
  # A MySQL string literal: backslashes and single quotes escaped.
  printf "'%s'" "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/''/g")"
}

: "${VIGIA_GRAFANA_DB_USER:?VIGIA_GRAFANA_DB_USER must be set}"
: "${VIGIA_GRAFANA_DB_PASSWORD:?VIGIA_GRAFANA_DB_PASSWORD must be set}"
: "${MARIADB_DATABASE:?MARIADB_DATABASE must be set}"

# shellcheck disable=SC2016 # the backticks are literal SQL quoting
vigia_db=$(printf '%s' "$MARIADB_DATABASE" | sed 's/`/``/g')
docker_process_sql --database=mysql <<SQL
CREATE USER IF NOT EXISTS $(vigia_sql_string "$VIGIA_GRAFANA_DB_USER")@'%'
  IDENTIFIED BY $(vigia_sql_string "$VIGIA_GRAFANA_DB_PASSWORD");
GRANT SELECT ON \`$vigia_db\`.* TO $(vigia_sql_string "$VIGIA_GRAFANA_DB_USER")@'%';
SQL
unset vigia_db
