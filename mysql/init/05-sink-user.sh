# shellcheck shell=bash
# Sourced (not executed) by the MariaDB image's entrypoint on the first start
# of an empty data volume, after it created the database (MARIADB_DATABASE).
# Creates the sink's user with what the sink does and nothing more:
#   - rows: SELECT, INSERT, UPDATE, DELETE (ingest, rollups, retention);
#   - schema, for its migrations at start: CREATE, ALTER, INDEX, CREATE VIEW,
#     SHOW VIEW, and GET_LOCK needs nothing;
#   - DROP only on the tables a migration drops, by name (0004 turns the
#     table `processes` into a view), and on the tables partitioned by day
#     (0010), whose expired days retention drops: MySQL asks the DROP
#     privilege for ALTER TABLE ... DROP PARTITION. That adds nothing to what
#     DELETE already allows on their rows; the audit trail (`commands`),
#     `hosts` and the boots stay undroppable. A migration that drops another
#     table, or partitions one, adds its name to vigia_sink_droppable below
#     (the partitioned ones are sink/src/partitions.rs's TABLES;
#     scripts/checks/mysql-privileges.sh checks that the sink drops an
#     expired day of each as this user).
# All on vigia's database only: no global privilege, so the sink cannot
# DROP DATABASE (that needs DROP on the whole database), read or change
# another schema, or grant anything. (The image's MARIADB_USER would get ALL
# PRIVILEGES on the database: compose does not set it.)
#
# docker_process_sql is the entrypoint's own client, connected as root.

vigia_sql_string() {
  # A MySQL string literal: backslashes and single quotes escaped.
  printf "'%s'" "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/''/g")"
}

: "${VIGIA_SINK_DB_USER:?VIGIA_SINK_DB_USER must be set}"
: "${VIGIA_SINK_DB_PASSWORD:?VIGIA_SINK_DB_PASSWORD must be set}"
: "${MARIADB_DATABASE:?MARIADB_DATABASE must be set}"

vigia_sink_droppable=(processes
  cpu_samples ram_samples procs_snapshots process_samples publisher_health host_events sink_health
  host_minutes host_ten_minutes process_ten_minutes)
# shellcheck disable=SC2016 # the backticks are literal SQL quoting
vigia_db=$(printf '%s' "$MARIADB_DATABASE" | sed 's/`/``/g')
vigia_sink=$(vigia_sql_string "$VIGIA_SINK_DB_USER")@"'%'"
# shellcheck disable=SC2016 # the backticks are literal SQL quoting
{
  printf 'CREATE USER IF NOT EXISTS %s IDENTIFIED BY %s;\n' "$vigia_sink" "$(vigia_sql_string "$VIGIA_SINK_DB_PASSWORD")"
  printf 'GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, CREATE VIEW, SHOW VIEW ON `%s`.* TO %s;\n' \
    "$vigia_db" "$vigia_sink"
  for t in "${vigia_sink_droppable[@]}"; do
    # A table-level grant may name a table that does not exist yet (a new
    # database) only with CREATE in it; the sink has CREATE there anyway.
    printf 'GRANT CREATE, DROP ON `%s`.`%s` TO %s;\n' "$vigia_db" "$t" "$vigia_sink"
  done
} | docker_process_sql --database=mysql
unset vigia_db vigia_sink vigia_sink_droppable
