# shellcheck shell=bash
# Cloud SQL for MySQL 8 in place of the central VM's MariaDB container
# (scripts/gcp/up --cloud-sql), sourced by up and down after lib.sh:
#   - highly available: a regional instance (a standby in another zone of the
#     region, failover automatic), which needs binary logging and backups;
#   - private IP only, reached through private services access on the
#     deployment's VPC (a reserved range peered with Google's service network);
#   - automated daily backups, seven kept, and point-in-time recovery from the
#     binary log.
# The sink's and Grafana's passwords are generated into Secret Manager like the
# other secrets, and go to gcloud in a --flags-file, never on a command line.
# The central VM reads them at boot; its compose stack then runs without the
# mysql service (docker-compose.cloud-sql.yml points the sink and Grafana at
# the instance). The sink reconnects and resumes by itself across a failover.

# up_cloud_sql: the peering, the instance, the database and its two users.
up_cloud_sql() {
  if exists compute addresses describe "$SQL_RANGE" --global; then
    say_exists "private services range $SQL_RANGE"
  else
    gc compute addresses create "$SQL_RANGE" --global --purpose=VPC_PEERING \
      --prefix-length="$SQL_RANGE_PREFIX" --network="$NETWORK" \
      --description="vigia: private services access for Cloud SQL"
  fi
  local peered
  peered=$(gc_read services vpc-peerings list --network="$NETWORK" --format='value(reservedPeeringRanges)' || true)
  if grep -qw -- "$SQL_RANGE" <<<"$peered"; then
    say_exists "private services access on $NETWORK"
  else
    gc services vpc-peerings connect --service=servicenetworking.googleapis.com \
      --ranges="$SQL_RANGE" --network="$NETWORK"
  fi
  if exists sql instances describe "$SQL_INSTANCE"; then
    say_exists "Cloud SQL instance $SQL_INSTANCE"
  else
    gc sql instances create "$SQL_INSTANCE" --database-version=MYSQL_8_0 --edition=enterprise \
      --tier="$SQL_TIER" --region="$REGION" --availability-type=REGIONAL \
      --network="$NETWORK" --no-assign-ip \
      --backup-start-time=03:00 --retained-backups-count=7 --enable-bin-log \
      --storage-type=SSD --storage-size=20GB --storage-auto-increase
  fi
  if exists sql databases describe vigia --instance="$SQL_INSTANCE"; then
    say_exists "database vigia on $SQL_INSTANCE"
  else
    gc sql databases create vigia --instance="$SQL_INSTANCE" --charset=utf8mb4
  fi
  new_secret "$SECRET_SQL_SINK"
  new_secret "$SECRET_SQL_GRAFANA"
  grant secrets "$SECRET_SQL_SINK" roles/secretmanager.secretAccessor "serviceAccount:$SA_CENTRAL"
  grant secrets "$SECRET_SQL_GRAFANA" roles/secretmanager.secretAccessor "serviceAccount:$SA_CENTRAL"
  local users
  users=$(gc_read sql users list --instance="$SQL_INSTANCE" --format='value(name)' || true)
  sql_user vigia_sink "$SECRET_SQL_SINK" "$users"
  sql_user vigia_grafana "$SECRET_SQL_GRAFANA" "$users"
}

# sql_user NAME SECRET EXISTING-USERS: creates NAME with the password SECRET
# holds, passed in a root-only --flags-file.
sql_user() {
  local name=$1 secret_name=$2 users=$3 flags
  if grep -qx -- "$name" <<<"$users"; then
    say_exists "Cloud SQL user $name"
    return
  fi
  flags=$TMP/$name-flags.yaml
  (
    umask 077
    if [ -f "$TMP/$secret_name" ]; then
      printf -- '--password: "%s"\n' "$(cat "$TMP/$secret_name")" >"$flags"
    else
      printf -- '--password: "%s"\n' "$(gc_read secrets versions access latest --secret="$secret_name")" >"$flags"
    fi
  )
  gc sql users create "$name" --instance="$SQL_INSTANCE" --host=% --flags-file="$flags"
  rm -f "$flags"
}

# The instance's private IP, for the central VM's metadata.
cloud_sql_ip() {
  gc_read sql instances describe "$SQL_INSTANCE" \
    --format='value(ipAddresses[0].ipAddress)' || printf 'SQL_PRIVATE_IP'
}

# down_cloud_sql: the instance (its backups go with it), the peering, the
# range, the secrets.
down_cloud_sql() {
  delete_if_exists "Cloud SQL instance $SQL_INSTANCE" -- sql instances describe "$SQL_INSTANCE" \
    -- sql instances delete "$SQL_INSTANCE"
  local peered
  if [ -n "$DRY_RUN" ]; then
    show gcloud services vpc-peerings list --network="$NETWORK" --project="$PROJECT" --quiet
    peered=$SQL_RANGE
  else
    peered=$(gc_read services vpc-peerings list --network="$NETWORK" --format='value(reservedPeeringRanges)' || true)
  fi
  if grep -qw -- "$SQL_RANGE" <<<"$peered"; then
    gc services vpc-peerings delete --service=servicenetworking.googleapis.com --network="$NETWORK"
  else
    log "= absent: private services access on $NETWORK"
  fi
  delete_if_exists "private services range $SQL_RANGE" -- compute addresses describe "$SQL_RANGE" --global \
    -- compute addresses delete "$SQL_RANGE" --global
  local secret
  for secret in "$SECRET_SQL_SINK" "$SECRET_SQL_GRAFANA"; do
    delete_if_exists "secret $secret" -- secrets describe "$secret" -- secrets delete "$secret"
  done
}
