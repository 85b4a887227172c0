# shellcheck shell=bash disable=SC2034 # the settings and names are used by the scripts that source this
# Shared by scripts/gcp/{up,down,stress}: settings, flag parsing, the names of
# every resource, and the wrappers that run (or, with --dry-run, only print)
# each gcloud command. Sourced, never run.
#
# Every setting is a flag and an environment variable; the flag wins.

# ---- settings ---------------------------------------------------------------
PROJECT=${VIGIA_GCP_PROJECT:-}
REGION=${VIGIA_GCP_REGION:-us-central1}
ZONE=${VIGIA_GCP_ZONE:-}                      # default: <region>-a, set below
PREFIX=${VIGIA_GCP_PREFIX:-vigia}             # every resource name starts with it
CENTRAL_MACHINE_TYPE=${VIGIA_GCP_CENTRAL_MACHINE_TYPE:-e2-standard-2}
CENTRAL_DISK_GB=${VIGIA_GCP_CENTRAL_DISK_GB:-30}
FLEET_MACHINE_TYPE=${VIGIA_GCP_FLEET_MACHINE_TYPE:-e2-medium}
FLEET_DISK_GB=${VIGIA_GCP_FLEET_DISK_GB:-10}
MIN_SIZE=${VIGIA_GCP_MIN_SIZE:-1}
MAX_SIZE=${VIGIA_GCP_MAX_SIZE:-5}
TARGET_CPU=${VIGIA_GCP_TARGET_CPU:-0.6}
COOL_DOWN=${VIGIA_GCP_COOL_DOWN:-120}         # seconds a new VM needs before its CPU counts
IMAGE_FAMILY=${VIGIA_GCP_IMAGE_FAMILY:-debian-12}
IMAGE_PROJECT=${VIGIA_GCP_IMAGE_PROJECT:-debian-cloud}
SUBNET_RANGE=${VIGIA_GCP_SUBNET_RANGE:-10.20.0.0/24}
CENTRAL_IP=${VIGIA_GCP_CENTRAL_IP:-10.20.0.10}
GRAFANA_CIDR=${VIGIA_GCP_GRAFANA_CIDR:-}      # no default: the operator must say who may reach :3000
PUBLISHER_BIN=${VIGIA_GCP_PUBLISHER_BIN:-}    # default: target/release/vigia-publisher, built if absent
AUTH_BIN=${VIGIA_GCP_AUTH_BIN:-}              # default: target/release/vigia-auth, built if absent (makes the keys)
KEYS_DIR=${VIGIA_GCP_KEYS_DIR:-}              # default: secrets/gcp/<project>-<prefix> in the clone (set below)
INTERVAL=${VIGIA_GCP_INTERVAL:-1s}            # the publisher's sampling interval on the fleet
NATS_NODES=${VIGIA_GCP_NATS_NODES:-1}          # 1: NATS on the central VM; 3: a cluster (scripts/gcp/cluster.sh)
NATS_MACHINE_TYPE=${VIGIA_GCP_NATS_MACHINE_TYPE:-e2-small}
NATS_DISK_GB=${VIGIA_GCP_NATS_DISK_GB:-30}
NATS_IPS=${VIGIA_GCP_NATS_IPS:-10.20.0.11,10.20.0.12}   # the second and third nodes
CLOUD_SQL=${VIGIA_GCP_CLOUD_SQL:-}            # non-empty: Cloud SQL for MySQL instead of MariaDB (scripts/gcp/cloud-sql.sh)
SQL_TIER=${VIGIA_GCP_SQL_TIER:-db-custom-2-7680}
SQL_RANGE_PREFIX=${VIGIA_GCP_SQL_RANGE_PREFIX:-20}   # the private services range's size, /N
DRY_RUN=${VIGIA_GCP_DRY_RUN:-}
# What a dry run takes a describe to say: up assumes nothing exists (and shows
# every create), down that everything does (and shows every delete).
DRY_RUN_EXISTS=no
ASSUME_YES=

# Google's range for IAP TCP forwarding: the only source allowed to reach SSH.
readonly IAP_RANGE=35.235.240.0/20
# The APIs the deployment uses; up enables those not yet enabled.
readonly APIS=(compute.googleapis.com iap.googleapis.com secretmanager.googleapis.com storage.googleapis.com)

GCP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$GCP_DIR/../.." && pwd)

log() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

common_usage() {
  cat <<EOF
Settings (flag, or environment variable; default):
  --project ID            VIGIA_GCP_PROJECT       gcloud's configured project
  --region R              VIGIA_GCP_REGION        $REGION
  --zone Z                VIGIA_GCP_ZONE          <region>-a
  --prefix P              VIGIA_GCP_PREFIX        $PREFIX (every resource name starts with it)
  --central-machine-type  VIGIA_GCP_CENTRAL_MACHINE_TYPE  $CENTRAL_MACHINE_TYPE
  --central-disk-gb N     VIGIA_GCP_CENTRAL_DISK_GB       $CENTRAL_DISK_GB
  --fleet-machine-type    VIGIA_GCP_FLEET_MACHINE_TYPE    $FLEET_MACHINE_TYPE
  --fleet-disk-gb N       VIGIA_GCP_FLEET_DISK_GB         $FLEET_DISK_GB
  --min-size N            VIGIA_GCP_MIN_SIZE      $MIN_SIZE
  --max-size N            VIGIA_GCP_MAX_SIZE      $MAX_SIZE
  --target-cpu F          VIGIA_GCP_TARGET_CPU    $TARGET_CPU (autoscaler CPU target, 0-1)
  --cool-down SECONDS     VIGIA_GCP_COOL_DOWN     $COOL_DOWN
  --image-family F        VIGIA_GCP_IMAGE_FAMILY  $IMAGE_FAMILY
  --image-project P       VIGIA_GCP_IMAGE_PROJECT $IMAGE_PROJECT
  --subnet-range CIDR     VIGIA_GCP_SUBNET_RANGE  $SUBNET_RANGE
  --central-ip IP         VIGIA_GCP_CENTRAL_IP    $CENTRAL_IP (inside the subnet range)
  --grafana-cidr CIDR     VIGIA_GCP_GRAFANA_CIDR  none: who may reach Grafana on :3000
  --publisher-bin PATH    VIGIA_GCP_PUBLISHER_BIN target/release/vigia-publisher (built if absent)
  --auth-bin PATH         VIGIA_GCP_AUTH_BIN      target/release/vigia-auth (built if absent): makes vigia-auth's keys
  --keys-dir DIR          VIGIA_GCP_KEYS_DIR      secrets/gcp/<project>-<prefix>: the deployment's CA (with its key)
                                                  and vigia-auth's keys, kept on this machine (up needs them again)
  --interval D            VIGIA_GCP_INTERVAL      $INTERVAL (the fleet's sampling interval)
  --nats-nodes N          VIGIA_GCP_NATS_NODES    $NATS_NODES (1, or 3: a NATS cluster over the central VM and two more)
  --nats-machine-type     VIGIA_GCP_NATS_MACHINE_TYPE     $NATS_MACHINE_TYPE (the two extra NATS nodes)
  --nats-disk-gb N        VIGIA_GCP_NATS_DISK_GB          $NATS_DISK_GB
  --nats-ips IP,IP        VIGIA_GCP_NATS_IPS      $NATS_IPS (inside the subnet range)
  --cloud-sql             VIGIA_GCP_CLOUD_SQL=1   Cloud SQL for MySQL 8 (HA, private IP, daily backups) instead of MariaDB
  --sql-tier T            VIGIA_GCP_SQL_TIER      $SQL_TIER
  --dry-run               VIGIA_GCP_DRY_RUN=1     print every gcloud command instead of running it
  --yes                                           do not ask before deleting (down)
EOF
}

# parse_flags "$@": sets the settings above. A script may define
# extra_flag NAME VALUE, returning 0 when it took NAME (and set EXTRA_SHIFT to
# 1 or 2), 1 when it does not know it.
EXTRA_SHIFT=0
parse_flags() {
  local args=() a
  # Split --name=value into --name value so that each flag is handled once.
  for a in "$@"; do
    case $a in
      --*=*) args+=("${a%%=*}" "${a#*=}") ;;
      *) args+=("$a") ;;
    esac
  done
  set -- ${args[@]+"${args[@]}"}
  while [ $# -gt 0 ]; do
    case $1 in
      -h|--help) usage; exit 0 ;;
      --dry-run) DRY_RUN=1; shift; continue ;;
      --cloud-sql) CLOUD_SQL=1; shift; continue ;;
      --yes|-y) ASSUME_YES=1; shift; continue ;;
    esac
    local var=
    case $1 in
      --project) var=PROJECT ;;
      --region) var=REGION ;;
      --zone) var=ZONE ;;
      --prefix) var=PREFIX ;;
      --central-machine-type) var=CENTRAL_MACHINE_TYPE ;;
      --central-disk-gb) var=CENTRAL_DISK_GB ;;
      --fleet-machine-type) var=FLEET_MACHINE_TYPE ;;
      --fleet-disk-gb) var=FLEET_DISK_GB ;;
      --min-size) var=MIN_SIZE ;;
      --max-size) var=MAX_SIZE ;;
      --target-cpu) var=TARGET_CPU ;;
      --cool-down) var=COOL_DOWN ;;
      --image-family) var=IMAGE_FAMILY ;;
      --image-project) var=IMAGE_PROJECT ;;
      --subnet-range) var=SUBNET_RANGE ;;
      --central-ip) var=CENTRAL_IP ;;
      --grafana-cidr) var=GRAFANA_CIDR ;;
      --publisher-bin) var=PUBLISHER_BIN ;;
      --auth-bin) var=AUTH_BIN ;;
      --keys-dir) var=KEYS_DIR ;;
      --interval) var=INTERVAL ;;
      --nats-nodes) var=NATS_NODES ;;
      --nats-machine-type) var=NATS_MACHINE_TYPE ;;
      --nats-disk-gb) var=NATS_DISK_GB ;;
      --nats-ips) var=NATS_IPS ;;
      --sql-tier) var=SQL_TIER ;;
    esac
    if [ -n "$var" ]; then
      [ $# -ge 2 ] || die "$1 needs a value"
      printf -v "$var" '%s' "$2"
      shift 2
    elif declare -F extra_flag >/dev/null && extra_flag "$@"; then
      shift "$EXTRA_SHIFT"
    else
      die "unknown argument: $1 (see --help)"
    fi
  done
  finish_settings
}

finish_settings() {
  ZONE=${ZONE:-$REGION-a}
  if [ -z "$PROJECT" ]; then
    if [ -n "$DRY_RUN" ]; then
      PROJECT=PROJECT_ID   # a dry run runs no gcloud, not even to read its config
    else
      command -v gcloud >/dev/null || die "gcloud not found: install the Google Cloud CLI"
      PROJECT=$(gcloud config get-value project 2>/dev/null || true)
      [ -n "$PROJECT" ] || die "no project: pass --project or run 'gcloud config set project ID'"
    fi
  fi
  [[ $PREFIX =~ ^[a-z][a-z0-9-]{0,14}$ ]] || die "--prefix must be 1-15 of [a-z0-9-], starting with a letter"
  [[ $MIN_SIZE =~ ^[0-9]+$ && $MAX_SIZE =~ ^[0-9]+$ ]] || die "--min-size and --max-size must be integers"
  if [ "$MIN_SIZE" -lt 1 ] || [ "$MAX_SIZE" -lt "$MIN_SIZE" ]; then
    die "need 1 <= --min-size <= --max-size"
  fi
  [[ $COOL_DOWN =~ ^[0-9]+$ ]] || die "--cool-down is a number of seconds"
  [[ $TARGET_CPU =~ ^0?\.[0-9]+$ ]] || die "--target-cpu is a fraction such as 0.6"
  [[ $NATS_NODES == 1 || $NATS_NODES == 3 ]] || die "--nats-nodes is 1 or 3, got '$NATS_NODES'"
  [[ $NATS_IPS =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3},[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] \
    || die "--nats-ips is two IPv4 addresses separated by a comma, got '$NATS_IPS'"
  [[ $SQL_RANGE_PREFIX =~ ^[0-9]+$ ]] || die "VIGIA_GCP_SQL_RANGE_PREFIX is a prefix length such as 20"

  # Resource names, all derived from the prefix so that down finds what up made.
  NETWORK=$PREFIX-net
  SUBNET=$PREFIX-subnet
  FW_NATS=$PREFIX-allow-nats
  FW_GRAFANA=$PREFIX-allow-grafana
  FW_SSH=$PREFIX-allow-iap-ssh
  ROUTER=$PREFIX-router
  NAT=$PREFIX-nat
  CENTRAL_ADDRESS=$PREFIX-central-ip
  CENTRAL=$PREFIX-central
  TEMPLATE=$PREFIX-fleet-template
  MIG=$PREFIX-fleet
  BASE_INSTANCE_NAME=$PREFIX-vm
  TAG_CENTRAL=$PREFIX-central
  TAG_FLEET=$PREFIX-fleet
  SA_ID=$PREFIX-vm
  SA_EMAIL=$SA_ID@$PROJECT.iam.gserviceaccount.com
  # The shared NATS token of deployments made before every connection had an
  # identity: no longer made, only removed by down.
  SECRET_NATS_LEGACY=$PREFIX-nats-token
  SECRET_GRAFANA=$PREFIX-grafana-admin-password
  # What NATS and vigia-auth keep secret, readable by the central service
  # account only (the NATS node VMs run as it too): the server certificate's
  # key and vigia-auth's issuer and service seeds.
  SECRET_TLS_KEY=$PREFIX-nats-tls-key
  SECRET_AUTH_ISSUER=$PREFIX-auth-issuer
  SECRET_AUTH_SERVICE=$PREFIX-auth-service
  KEYS_DIR=${KEYS_DIR:-$REPO_ROOT/secrets/gcp/$PROJECT-$PREFIX}
  BUCKET=gs://$PROJECT-$PREFIX-releases
  OBJ_PUBLISHER=$BUCKET/vigia-publisher
  OBJ_SOURCE=$BUCKET/vigia-source.tar.gz
  STRESS_UNIT=$PREFIX-stress
  # The NATS cluster (--nats-nodes 3): the central VM is node 1.
  TAG_NATS=$PREFIX-nats
  FW_NATS_NODES=$PREFIX-allow-nats-nodes
  FW_NATS_ROUTES=$PREFIX-allow-nats-routes
  NATS_VMS=("$PREFIX-nats-2" "$PREFIX-nats-3")
  NATS_ADDRESSES=("$PREFIX-nats-2-ip" "$PREFIX-nats-3-ip")
  IFS=, read -r -a NATS_NODE_IPS <<<"$NATS_IPS"
  NATS_ROUTES="nats-route://$CENTRAL_IP:6222,nats-route://${NATS_NODE_IPS[0]}:6222,nats-route://${NATS_NODE_IPS[1]}:6222"
  # The audience the fleet's instance identity tokens carry and vigia-auth
  # expects: the deployment's NATS endpoint (one string, even for a cluster).
  GCE_AUDIENCE=nats://$CENTRAL_IP:4222
  if [ "$NATS_NODES" = 3 ]; then
    NATS_URLS="nats://$CENTRAL_IP:4222,nats://${NATS_NODE_IPS[0]}:4222,nats://${NATS_NODE_IPS[1]}:4222"
  else
    NATS_URLS="nats://$CENTRAL_IP:4222"
  fi
  # Cloud SQL (--cloud-sql).
  SQL_INSTANCE=$PREFIX-mysql
  SQL_RANGE=$PREFIX-sql-range
  SECRET_SQL_SINK=$PREFIX-sql-sink-password
  SECRET_SQL_GRAFANA=$PREFIX-sql-grafana-password
}

# ---- running gcloud ---------------------------------------------------------
# Prints a command the way a person would type it.
show() {
  local out='+' a
  for a in "$@"; do out+=" $(printf '%q' "$a")"; done
  printf '%s\n' "$out" >&2
}

# gc ARGS...: one gcloud command against the project, non-interactive. Printed
# first; with --dry-run only printed.
gc() {
  show gcloud "$@" --project="$PROJECT" --quiet
  [ -n "$DRY_RUN" ] && return 0
  gcloud "$@" --project="$PROJECT" --quiet
}

# gc_read ARGS...: a read-only gcloud command whose output the caller uses.
# Prints the command; with --dry-run prints nothing on stdout and fails, so the
# caller goes on as if the thing were absent.
gc_read() {
  show gcloud "$@" --project="$PROJECT" --quiet
  [ -n "$DRY_RUN" ] && return 1
  gcloud "$@" --project="$PROJECT" --quiet 2>/dev/null
}

# exists ARGS...: true when `gcloud ARGS` (a describe) succeeds.
exists() {
  if [ -n "$DRY_RUN" ]; then
    show gcloud "$@" --format='value(name)' --project="$PROJECT" --quiet
    [ "$DRY_RUN_EXISTS" = yes ]
    return
  fi
  gc_read "$@" --format='value(name)' >/dev/null
}

# run ARGS...: a command other than gcloud (a build, an archive), printed, and
# skipped with --dry-run.
run() {
  show "$@"
  [ -n "$DRY_RUN" ] && return 0
  "$@"
}

# metadata_arg K=V...: one --metadata value. A value holding commas (a list of
# routes or URLs) needs gcloud's other delimiter syntax, ^;^, to stay one value
# (gcloud topic escaping).
metadata_arg() {
  local IFS
  if [[ "$*" == *,* ]]; then
    IFS=';'
    printf '^;^%s' "$*"
  else
    IFS=','
    printf '%s' "$*"
  fi
}

say_exists() { log "= exists, left as it is: $*"; }
