#!/usr/bin/env bash
# Checks scripts/gcp/ (up, down, stress, the VM startup script), the
# publisher's systemd unit and scripts/install-publisher.sh without a Google
# Cloud account and without any traffic leaving this machine:
#   - up/down/stress run against scripts/gcp/tests/fake-gcloud, which records
#     every call and keeps the state of what exists: the calls, their order and
#     key arguments are compared with what is expected, a second up must create
#     nothing, a second down delete nothing;
#   - every command line they produced is then given to the real gcloud CLI,
#     when it is installed, inside a network namespace with no network and no
#     credentials: its parser must accept it (it then stops at "no active
#     account"), so no flag is misspelt or unknown to gcloud;
#   - the deployment's identities: fleet VMs get no NATS secret (no secret
#     named in their metadata, none their service account may read), the CA
#     certificate and the identity token's audience; the central VM the
#     server certificate and the secrets of its key and of vigia-auth's
#     seeds, readable by its account only; the CA key stays with up;
#   - vm-startup.sh runs as every role in a throwaway root (VIGIA_ROOT), its
#     metadata server, Cloud Storage and Secret Manager served on 127.0.0.1 by
#     scripts/gcp/tests/fake_gcp_api.py, apt-get/systemctl/docker stubbed,
#     with the keys up made: the publisher on --gce-identity with the CA, the
#     central VM's files taken as they are by the compose secrets service
#     (scripts/stack-secrets.sh, run for real) and the nodes' configs by the
#     pinned nats-server;
#   - install-publisher.sh twice in a throwaway root; the unit through
#     systemd-analyze verify and security.
# Ends with "gcp: N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
REPO=$PWD

# shellcheck source=scripts/lib/common.sh
. scripts/lib/common.sh

# ---- tools (CI is a fresh Debian machine, as root) --------------------------
need curl:curl python3:python3 systemd-analyze:systemd unshare:util-linux ||
  die "could not install curl, python3, systemd-analyze or unshare"
REAL_GCLOUD=$(command -v gcloud || true)

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  [ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# contains FILE FIXED-STRING...: each string occurs in FILE.
contains() {
  local file=$1 s
  shift
  for s in "$@"; do
    grep -qF -- "$s" "$file" || { echo "not found in $(basename "$file"): $s"; return 1; }
  done
}
lacks() {
  local file=$1 s
  shift
  for s in "$@"; do
    if grep -qF -- "$s" "$file"; then echo "found in $(basename "$file"): $s"; return 1; fi
  done
}

# (shellcheck runs over these scripts in scripts/checks/shell.sh.)

# ---- up / down / stress against the fake gcloud ------------------------------
mkdir -p "$WORK/bin"
ln -s "$REPO/scripts/gcp/tests/fake-gcloud" "$WORK/bin/gcloud"
export FAKE_GCLOUD_STATE=$WORK/gcloud-state
FAKE_PATH=$WORK/bin:$PATH
printf 'publisher v1\n' >"$WORK/vigia-publisher"
chmod +x "$WORK/vigia-publisher"
# up makes the deployment's keys with vigia-auth; the boots below run the
# secrets service's script (vigiactl too) and parse the fleet's env file with
# vigia-publisher: a build of this tree.
AUTH_DIR=
for d in target/release target/debug; do
  [ -x "$d/vigia-auth" ] && [ -x "$d/vigiactl" ] && [ -x "$d/vigia-publisher" ] && { AUTH_DIR=$REPO/$d; break; }
done
if [ -z "$AUTH_DIR" ]; then
  cargo build -q --locked -p vigia-auth -p vigiactl -p vigia-publisher || die "cannot build vigia-auth, vigiactl and vigia-publisher"
  AUTH_DIR=$REPO/target/debug
fi
need openssl:openssl || die "could not install openssl"
KEYS=$WORK/keys
ARGS=(--project=test-proj --grafana-cidr=198.51.100.0/24 --publisher-bin="$WORK/vigia-publisher"
  --auth-bin="$AUTH_DIR/vigia-auth" --keys-dir="$KEYS")

# gcloud_run LOG SCRIPT ARGS...: runs a scripts/gcp command with the fake,
# its calls going to LOG, its stdout to LOG.out and stderr to LOG.err.
gcloud_run() {
  local log=$1 script=$2
  shift 2
  : >"$log"
  FAKE_GCLOUD_LOG=$log PATH=$FAKE_PATH "scripts/gcp/$script" "$@" >"$log.out" 2>"$log.err"
}
# The calls of LOG that change something, cut to the command and its operand.
changes() {
  grep -vE '^gcloud (.* )?(describe|list|list-instances|get-iam-policy) ' "$1" \
    | sed -E 's/ --.*//' | sed -E 's/^gcloud //'
}
# same_lines NAME EXPECTED-FILE ACTUAL-FILE
same_lines() {
  local out
  if out=$(diff -u "$2" "$3"); then pass "$1"; else fail "$1" "$out"; fi
}
# line_of LOG PATTERN: the one call matching an extended regexp.
line_of() { grep -E "$2" "$1" | head -1; }

if gcloud_run "$WORK/up1" up "${ARGS[@]}"; then pass "up runs"; else fail "up runs" "$(tail -20 "$WORK/up1.err")"; fi

cat >"$WORK/up.expected" <<'EOF'
services enable compute.googleapis.com iap.googleapis.com secretmanager.googleapis.com storage.googleapis.com
iam service-accounts create vigia-central
iam service-accounts create vigia-fleet
compute networks create vigia-net
compute networks subnets create vigia-subnet
compute firewall-rules create vigia-allow-nats
compute firewall-rules create vigia-allow-grafana
compute firewall-rules create vigia-allow-iap-ssh
compute routers create vigia-router
compute routers nats create vigia-nat
storage buckets create gs://test-proj-vigia-releases
storage buckets add-iam-policy-binding gs://test-proj-vigia-releases
storage buckets add-iam-policy-binding gs://test-proj-vigia-releases
storage cp WORK/vigia-publisher gs://test-proj-vigia-releases/vigia-publisher
storage cp TMP/vigia-source.tar.gz gs://test-proj-vigia-releases/vigia-source.tar.gz
secrets create vigia-grafana-admin-password
secrets add-iam-policy-binding vigia-grafana-admin-password
secrets create vigia-nats-tls-key
secrets create vigia-auth-issuer
secrets create vigia-auth-service
secrets add-iam-policy-binding vigia-nats-tls-key
secrets add-iam-policy-binding vigia-auth-issuer
secrets add-iam-policy-binding vigia-auth-service
compute addresses create vigia-central-ip
compute instances create vigia-central
compute instance-templates create vigia-fleet-template
compute instance-groups managed create vigia-fleet
compute instance-groups managed set-autoscaling vigia-fleet
EOF
changes "$WORK/up1" | sed -E "s#$WORK#WORK#; s#/tmp/tmp\.[A-Za-z0-9]+/vigia-source#TMP/vigia-source#" >"$WORK/up.actual"
same_lines "up: creates every resource, in dependency order" "$WORK/up.expected" "$WORK/up.actual"

fw_nats=$(line_of "$WORK/up1" 'firewall-rules create vigia-allow-nats ')
fw_grafana=$(line_of "$WORK/up1" 'firewall-rules create vigia-allow-grafana ')
fw_ssh=$(line_of "$WORK/up1" 'firewall-rules create vigia-allow-iap-ssh ')
template=$(line_of "$WORK/up1" 'instance-templates create ')
central=$(line_of "$WORK/up1" 'instances create vigia-central ')
mig=$(line_of "$WORK/up1" 'instance-groups managed create ')
autoscale=$(line_of "$WORK/up1" 'set-autoscaling ')
expect_args() {
  local name=$1 line=$2 a
  shift 2
  for a in "$@"; do
    # The log holds each argument shell-quoted (printf %q).
    [[ " $line " == *" $(printf '%q' "$a") "* ]] || { fail "$name" "missing $a in: $line"; return; }
  done
  pass "$name"
}
expect_args "up: NATS port open to the fleet's tag only" "$fw_nats" \
  --rules=tcp:4222 --source-tags=vigia-fleet --target-tags=vigia-central
expect_args "up: Grafana open to the operator's CIDR only" "$fw_grafana" \
  --rules=tcp:3000 --source-ranges=198.51.100.0/24 --target-tags=vigia-central
expect_args "up: SSH open to IAP's range only" "$fw_ssh" \
  --rules=tcp:22 --source-ranges=35.235.240.0/20
check "up: no firewall rule admits 0.0.0.0/0" lacks "$WORK/up1" "0.0.0.0/0"
expect_args "up: template with the startup script and the CA, no external IP, fleet tag, its metadata" "$template" \
  "--metadata-from-file=startup-script=$REPO/scripts/gcp/vm-startup.sh,vigia-nats-ca=$KEYS/tls/ca.pem" \
  --no-address --tags=vigia-fleet \
  --machine-type=e2-medium --service-account=vigia-fleet@test-proj.iam.gserviceaccount.com \
  "--metadata=enable-oslogin=TRUE,vigia-role=fleet,vigia-source=gs://test-proj-vigia-releases/vigia-source.tar.gz,vigia-publisher=gs://test-proj-vigia-releases/vigia-publisher,vigia-central-ip=10.20.0.10,vigia-gce-audience=nats://10.20.0.10:4222,vigia-interval=1s"
expect_args "up: central VM with the startup script, the CA and certificate, its reserved IP and tag, the secrets of its keys" "$central" \
  "--metadata-from-file=startup-script=$REPO/scripts/gcp/vm-startup.sh,vigia-nats-ca=$KEYS/tls/ca.pem,vigia-nats-cert=$KEYS/tls/server.pem" \
  --private-network-ip=10.20.0.10 --tags=vigia-central --machine-type=e2-standard-2 --shielded-secure-boot \
  "--metadata=enable-oslogin=TRUE,vigia-role=central,vigia-source=gs://test-proj-vigia-releases/vigia-source.tar.gz,vigia-grafana-secret=vigia-grafana-admin-password,vigia-nats-key-secret=vigia-nats-tls-key,vigia-auth-issuer-secret=vigia-auth-issuer,vigia-auth-service-secret=vigia-auth-service,vigia-gce-audience=nats://10.20.0.10:4222"

# The fleet holds no NATS secret: its template names no secret, and its
# service account may read none; it gets the CA certificate (no key) instead.
fleet_no_secret() {
  local f
  if grep -qi secret <<<"$template"; then echo "the template names a secret: $template"; return 1; fi
  for f in "$FAKE_GCLOUD_STATE"/iam-policy_secrets_*; do
    [ -f "$f" ] || continue
    if grep -q 'vigia-fleet@' "$f"; then echo "the fleet may read $(basename "$f")"; return 1; fi
  done
  openssl x509 -in "$KEYS/tls/ca.pem" -noout -text | grep -q 'CA:TRUE' || { echo "vigia-nats-ca is not a CA certificate"; return 1; }
  if grep -q PRIVATE "$KEYS/tls/ca.pem"; then echo "the CA file given to the fleet holds a key"; return 1; fi
}
check "up: fleet VMs get no NATS secret (none named, none readable), only the CA certificate" fleet_no_secret
# The central service account alone reads the keys' secrets; the CA's key
# never leaves this machine.
keys_guarded() {
  local s f
  for s in vigia-nats-tls-key vigia-auth-issuer vigia-auth-service; do
    f=$FAKE_GCLOUD_STATE/iam-policy_secrets_$s
    if [ "$(grep -c serviceAccount: "$f")" != 1 ] || ! grep -q 'serviceAccount:vigia-central@' "$f"; then
      echo "$s readable by: $(grep serviceAccount: "$f")"
      return 1
    fi
  done
  if ! cmp -s "$FAKE_GCLOUD_STATE/secret-value_vigia-nats-tls-key" "$KEYS/tls/server-key.pem" ||
    ! cmp -s "$FAKE_GCLOUD_STATE/secret-value_vigia-auth-issuer" "$KEYS/auth/issuer.nk" ||
    ! cmp -s "$FAKE_GCLOUD_STATE/secret-value_vigia-auth-service" "$KEYS/auth/service.nk"; then
    echo "the secrets do not hold the keys of $KEYS"
    return 1
  fi
  [ -s "$KEYS/tls/ca-key.pem" ] || { echo "no CA key kept in $KEYS/tls"; return 1; }
  for f in "$FAKE_GCLOUD_STATE"/secret-value_*; do
    if cmp -s "$f" "$KEYS/tls/ca-key.pem"; then echo "the CA key is in Secret Manager"; return 1; fi
  done
  if grep -q ca-key "$WORK/up1"; then echo "the CA key is named in a gcloud call"; return 1; fi
  [ "$(stat -c %a "$KEYS")" = 700 ] || { echo "$KEYS is $(stat -c %a "$KEYS"), not 700"; return 1; }
}
check "up: only the central service account reads the server key and vigia-auth's seeds; the CA key stays in --keys-dir (0700)" keys_guarded
cert_names() {
  openssl verify -CAfile "$KEYS/tls/ca.pem" "$KEYS/tls/server.pem" >/dev/null &&
    openssl x509 -in "$KEYS/tls/server.pem" -noout -ext subjectAltName |
    grep -q 'DNS:nats, DNS:localhost, IP Address:127.0.0.1, IP Address:10.20.0.10, IP Address:10.20.0.11, IP Address:10.20.0.12'
}
check "up: the server certificate, under the CA, names nats and every NATS address (central and both nodes)" cert_names
expect_args "up: the group from the template at the minimum size" "$mig" \
  --template=vigia-fleet-template --size=1 --zone=us-central1-a
expect_args "up: set-autoscaling at 60 % CPU, 1 to 5 VMs, with a cool-down" "$autoscale" \
  --target-cpu-utilization=0.6 --min-num-replicas=1 --max-num-replicas=5 --cool-down-period=120
check "up: prints the Grafana URL" contains "$WORK/up1.out" "http://203.0.113.10:3000" \
  "gcloud secrets versions access latest --secret=vigia-grafana-admin-password"

# Secrets: generated, stored, never on a command line, in metadata or printed.
secret_values=()
for f in "$FAKE_GCLOUD_STATE"/secret-value_*; do secret_values+=("$(cat "$f")"); done
secrets_hidden() {
  [ "${#secret_values[@]}" -eq 4 ] || { echo "expected 4 secrets, got ${#secret_values[@]}"; return 1; }
  local v grafana
  grafana=$(cat "$FAKE_GCLOUD_STATE/secret-value_vigia-grafana-admin-password")
  [ "${#grafana}" -ge 40 ] || { echo "Grafana's password too short: ${#grafana} characters"; return 1; }
  for v in "${secret_values[@]}"; do
    [ "${#v}" -ge 40 ] || { echo "secret too short: ${#v} characters"; return 1; }
  done
  for f in "$WORK/up1" "$WORK/up1.out" "$WORK/up1.err"; do
    lacks "$f" "${secret_values[@]}" || return 1
  done
}
check "up: secrets are random or keys, in Secret Manager, never in a command line or output" secrets_hidden

gcloud_run "$WORK/up2" up "${ARGS[@]}" || fail "second up runs" "$(tail -20 "$WORK/up2.err")"
changes "$WORK/up2" >"$WORK/up2.changes"
check "second up: creates nothing, changes nothing" test ! -s "$WORK/up2.changes"
[ -s "$WORK/up2.changes" ] && sed 's/^/     | /' "$WORK/up2.changes"

# The keys lost on this machine while the deployment has them: up must not
# make new ones the VMs do not trust.
mv "$KEYS" "$WORK/keys.kept"
if gcloud_run "$WORK/nokeys" up "${ARGS[@]}"; then
  fail "up without the keys it made refuses"
else
  check "up without the keys it made refuses, and says where they were" contains "$WORK/nokeys.err" \
    "the deployment's keys exist (secret vigia-nats-tls-key) but not in $KEYS"
fi
check "up without its keys: creates nothing" test -z "$(changes "$WORK/nokeys")"
rm -rf "$KEYS"
mv "$WORK/keys.kept" "$KEYS"

printf 'publisher v2\n' >"$WORK/vigia-publisher"
gcloud_run "$WORK/up3" up "${ARGS[@]}" || fail "up with a new binary runs" "$(tail -20 "$WORK/up3.err")"
printf 'storage cp WORK/vigia-publisher gs://test-proj-vigia-releases/vigia-publisher\n' >"$WORK/up3.expected"
changes "$WORK/up3" | sed -E "s#$WORK#WORK#" >"$WORK/up3.actual"
same_lines "up with a rebuilt publisher: uploads it, and nothing else" "$WORK/up3.expected" "$WORK/up3.actual"

# A deployment from before identities (its shared token secret): up says
# what to do, and changes nothing else.
printf 'old-token\n' >"$WORK/old-token"
FAKE_GCLOUD_LOG=/dev/null PATH=$FAKE_PATH gcloud secrets create vigia-nats-token \
  --data-file="$WORK/old-token" --project=test-proj --quiet
if gcloud_run "$WORK/legacy" up "${ARGS[@]}"; then
  check "up over a deployment with the old shared token: says to run down and up" contains "$WORK/legacy.err" \
    "predates per-connection identities (secret vigia-nats-token exists)" "run down, then up"
  check "up over a deployment with the old shared token: changes nothing" test -z "$(changes "$WORK/legacy")"
else
  fail "up over a deployment with the old shared token runs" "$(tail -20 "$WORK/legacy.err")"
fi
FAKE_GCLOUD_LOG=/dev/null PATH=$FAKE_PATH gcloud secrets delete vigia-nats-token --project=test-proj --quiet

if gcloud_run "$WORK/dry" up "${ARGS[@]}" --dry-run; then
  check "up --dry-run: runs no gcloud" test ! -s "$WORK/dry"
  check "up --dry-run: prints every command" contains "$WORK/dry.err" \
    "+ gcloud compute instance-templates create vigia-fleet-template" \
    "+ gcloud compute instance-groups managed set-autoscaling vigia-fleet" \
    "+ gcloud compute firewall-rules create vigia-allow-grafana" \
    "+ gcloud compute networks describe vigia-net"
else
  fail "up --dry-run runs" "$(tail -20 "$WORK/dry.err")"
fi

if gcloud_run "$WORK/nocidr" up --project=test-proj --publisher-bin="$WORK/vigia-publisher"; then
  fail "up without --grafana-cidr is refused"
else
  check "up without --grafana-cidr is refused, and says why" contains "$WORK/nocidr.err" "--grafana-cidr is required"
fi
if gcloud_run "$WORK/badflag" up "${ARGS[@]}" --no-such-flag; then
  fail "up with an unknown flag is refused"
else
  check "up with an unknown flag is refused, and says which" contains "$WORK/badflag.err" "unknown argument: --no-such-flag"
fi

if gcloud_run "$WORK/stress" stress start --project=test-proj --duration=10m; then
  ssh=$(line_of "$WORK/stress" 'compute ssh ')
  expect_args "stress start: loads each VM over IAP SSH, bounded in time" "$ssh" \
    vigia-vm-0001 --tunnel-through-iap --zone=us-central1-a
  check "stress start: the load ends by itself after --duration" contains "$WORK/stress" "RuntimeMaxSec=600"
else
  fail "stress start runs" "$(tail -20 "$WORK/stress.err")"
fi
if gcloud_run "$WORK/unstress" stress stop --project=test-proj; then
  check "stress stop: stops the load on each VM" contains "$WORK/unstress" "vigia-vm-0001" "systemctl\\ stop\\ vigia-stress"
else
  fail "stress stop runs" "$(tail -20 "$WORK/unstress.err")"
fi

if gcloud_run "$WORK/down1" down --project=test-proj --yes; then pass "down runs"; else fail "down runs" "$(tail -20 "$WORK/down1.err")"; fi
cat >"$WORK/down.expected" <<'EOF'
compute instance-groups managed delete vigia-fleet
compute instance-templates delete vigia-fleet-template
compute instances delete vigia-central
compute addresses delete vigia-central-ip
compute routers nats delete vigia-nat
compute routers delete vigia-router
compute firewall-rules delete vigia-allow-nats
compute firewall-rules delete vigia-allow-grafana
compute firewall-rules delete vigia-allow-iap-ssh
compute networks subnets delete vigia-subnet
compute networks delete vigia-net
storage rm
secrets delete vigia-grafana-admin-password
secrets delete vigia-nats-tls-key
secrets delete vigia-auth-issuer
secrets delete vigia-auth-service
iam service-accounts delete vigia-central@test-proj.iam.gserviceaccount.com
iam service-accounts delete vigia-fleet@test-proj.iam.gserviceaccount.com
EOF
changes "$WORK/down1" >"$WORK/down.actual"
same_lines "down: deletes everything, users before what they use" "$WORK/down.expected" "$WORK/down.actual"
check "down: the bucket goes with its objects" contains "$WORK/down1" "storage rm --recursive gs://test-proj-vigia-releases"
leftover() {
  local f left=()
  for f in "$FAKE_GCLOUD_STATE"/*; do
    case $(basename "$f") in services) ;; *) left+=("$(basename "$f")") ;; esac
  done
  [ ${#left[@]} -eq 0 ] || { echo "left: ${left[*]}"; return 1; }
}
check "down: nothing up made is left" leftover
gcloud_run "$WORK/down2" down --project=test-proj --yes || fail "second down runs" "$(tail -20 "$WORK/down2.err")"
changes "$WORK/down2" >"$WORK/down2.changes"
check "second down: deletes nothing, fails on nothing" test ! -s "$WORK/down2.changes"
gcloud_run "$WORK/downdry" down --project=test-proj --dry-run || true
check "down --dry-run: runs no gcloud, prints every delete" contains "$WORK/downdry.err" \
  "+ gcloud compute instance-groups managed delete vigia-fleet" "+ gcloud iam service-accounts delete"
check "down --dry-run: runs no gcloud" test ! -s "$WORK/downdry"

# ---- up --nats-nodes 3 --cloud-sql: the NATS cluster and Cloud SQL ----------
CL_ARGS=("${ARGS[@]}" --nats-nodes=3 --cloud-sql)
if gcloud_run "$WORK/cl-up1" up "${CL_ARGS[@]}"; then pass "up --nats-nodes 3 --cloud-sql runs"; else fail "up --nats-nodes 3 --cloud-sql runs" "$(tail -20 "$WORK/cl-up1.err")"; fi
cat >"$WORK/cl-up.expected" <<'EOF'
services enable servicenetworking.googleapis.com sqladmin.googleapis.com
iam service-accounts create vigia-central
iam service-accounts create vigia-fleet
compute networks create vigia-net
compute networks subnets create vigia-subnet
compute firewall-rules create vigia-allow-nats
compute firewall-rules create vigia-allow-grafana
compute firewall-rules create vigia-allow-iap-ssh
compute routers create vigia-router
compute routers nats create vigia-nat
storage buckets create gs://test-proj-vigia-releases
storage buckets add-iam-policy-binding gs://test-proj-vigia-releases
storage buckets add-iam-policy-binding gs://test-proj-vigia-releases
storage cp WORK/vigia-publisher gs://test-proj-vigia-releases/vigia-publisher
storage cp TMP/vigia-source.tar.gz gs://test-proj-vigia-releases/vigia-source.tar.gz
secrets create vigia-grafana-admin-password
secrets add-iam-policy-binding vigia-grafana-admin-password
secrets create vigia-nats-tls-key
secrets create vigia-auth-issuer
secrets create vigia-auth-service
secrets add-iam-policy-binding vigia-nats-tls-key
secrets add-iam-policy-binding vigia-auth-issuer
secrets add-iam-policy-binding vigia-auth-service
compute firewall-rules create vigia-allow-nats-nodes
compute firewall-rules create vigia-allow-nats-routes
compute addresses create vigia-nats-2-ip
compute addresses create vigia-nats-3-ip
compute instances create vigia-nats-2
compute instances create vigia-nats-3
compute addresses create vigia-sql-range
services vpc-peerings connect
sql instances create vigia-mysql
sql databases create vigia
secrets create vigia-sql-sink-password
secrets create vigia-sql-grafana-password
secrets add-iam-policy-binding vigia-sql-sink-password
secrets add-iam-policy-binding vigia-sql-grafana-password
sql users create vigia_sink
sql users create vigia_grafana
compute addresses create vigia-central-ip
compute instances create vigia-central
compute instance-templates create vigia-fleet-template
compute instance-groups managed create vigia-fleet
compute instance-groups managed set-autoscaling vigia-fleet
EOF
changes "$WORK/cl-up1" | sed -E "s#$WORK#WORK#; s#/tmp/tmp\.[A-Za-z0-9]+/vigia-source#TMP/vigia-source#" >"$WORK/cl-up.actual"
same_lines "up --nats-nodes 3 --cloud-sql: creates the nodes, the peering, the instance, in dependency order" \
  "$WORK/cl-up.expected" "$WORK/cl-up.actual"
sql=$(line_of "$WORK/cl-up1" 'sql instances create ')
expect_args "up --cloud-sql: MySQL 8, regional HA, private IP only, backups with binary log" "$sql" \
  --database-version=MYSQL_8_0 --availability-type=REGIONAL --network=vigia-net --no-assign-ip \
  --enable-bin-log --backup-start-time=03:00 --retained-backups-count=7 --region=us-central1
peering=$(line_of "$WORK/cl-up1" 'vpc-peerings connect ')
expect_args "up --cloud-sql: private services access on the deployment's VPC" "$peering" \
  --service=servicenetworking.googleapis.com --ranges=vigia-sql-range --network=vigia-net
check "up --cloud-sql: database passwords go in a --flags-file, never as --password" lacks "$WORK/cl-up1" "--password"
check "up --cloud-sql: each user is created from a flags file" contains "$WORK/cl-up1" \
  "sql users create vigia_sink --instance=vigia-mysql --host=% --flags-file=" \
  "sql users create vigia_grafana --instance=vigia-mysql --host=% --flags-file="
sql_secrets_hidden() {
  local v f n=0
  for f in "$FAKE_GCLOUD_STATE"/secret-value_vigia-sql-*; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    v=$(cat "$f")
    [ "${#v}" -ge 40 ] || { echo "secret too short: ${#v} characters"; return 1; }
    lacks "$WORK/cl-up1" "$v" && lacks "$WORK/cl-up1.out" "$v" && lacks "$WORK/cl-up1.err" "$v" || return 1
  done
  [ "$n" -eq 2 ] || { echo "expected 2 database secrets, got $n"; return 1; }
}
check "up --cloud-sql: database passwords random, never in a command line or output" sql_secrets_hidden
node=$(line_of "$WORK/cl-up1" 'instances create vigia-nats-2 ')
expect_args "up --nats-nodes 3: node 2 at its reserved IP, no external IP, the nats tag and role, the certificate and callout block" "$node" \
  --private-network-ip=10.20.0.11 --no-address --tags=vigia-nats --machine-type=e2-small \
  "--metadata-from-file=startup-script=$REPO/scripts/gcp/vm-startup.sh,vigia-nats-cert=$KEYS/tls/server.pem,vigia-auth-conf=$KEYS/auth/auth.conf" \
  "--metadata=^;^enable-oslogin=TRUE;vigia-role=nats;vigia-source=gs://test-proj-vigia-releases/vigia-source.tar.gz;vigia-nats-key-secret=vigia-nats-tls-key;vigia-nats-name=nats-2;vigia-nats-routes=nats-route://10.20.0.10:6222,nats-route://10.20.0.11:6222,nats-route://10.20.0.12:6222"
routes_rule=$(line_of "$WORK/cl-up1" 'firewall-rules create vigia-allow-nats-routes ')
expect_args "up --nats-nodes 3: routes (6222) open between the NATS nodes only" "$routes_rule" \
  --rules=tcp:6222 --source-tags=vigia-central,vigia-nats --target-tags=vigia-central,vigia-nats
nodes_rule=$(line_of "$WORK/cl-up1" 'firewall-rules create vigia-allow-nats-nodes ')
expect_args "up --nats-nodes 3: clients (4222) to the nodes from the fleet and the central VM" "$nodes_rule" \
  --rules=tcp:4222 --source-tags=vigia-fleet,vigia-central --target-tags=vigia-nats
cl_central=$(line_of "$WORK/cl-up1" 'instances create vigia-central ')
expect_args "up --nats-nodes 3 --cloud-sql: the central VM knows the routes and the database" "$cl_central" \
  "--metadata=^;^enable-oslogin=TRUE;vigia-role=central;vigia-source=gs://test-proj-vigia-releases/vigia-source.tar.gz;vigia-grafana-secret=vigia-grafana-admin-password;vigia-nats-key-secret=vigia-nats-tls-key;vigia-auth-issuer-secret=vigia-auth-issuer;vigia-auth-service-secret=vigia-auth-service;vigia-gce-audience=nats://10.20.0.10:4222;vigia-nats-routes=nats-route://10.20.0.10:6222,nats-route://10.20.0.11:6222,nats-route://10.20.0.12:6222;vigia-database-host=10.20.64.3;vigia-sql-sink-secret=vigia-sql-sink-password;vigia-sql-grafana-secret=vigia-sql-grafana-password"
cl_template=$(line_of "$WORK/cl-up1" 'instance-templates create ')
expect_args "up --nats-nodes 3: publishers take all three nodes" "$cl_template" \
  "--metadata=^;^enable-oslogin=TRUE;vigia-role=fleet;vigia-source=gs://test-proj-vigia-releases/vigia-source.tar.gz;vigia-publisher=gs://test-proj-vigia-releases/vigia-publisher;vigia-central-ip=10.20.0.10;vigia-gce-audience=nats://10.20.0.10:4222;vigia-interval=1s;vigia-nats-urls=nats://10.20.0.10:4222,nats://10.20.0.11:4222,nats://10.20.0.12:4222"
check "up --nats-nodes 3 --cloud-sql: prints the nodes and the database" contains "$WORK/cl-up1.out" \
  "NATS:      nats://10.20.0.10:4222,nats://10.20.0.11:4222,nats://10.20.0.12:4222   (TLS, CA $KEYS/tls/ca.pem)" \
  "Database:  Cloud SQL for MySQL vigia-mysql (regional HA, private IP, daily backups kept 7 days)"
gcloud_run "$WORK/cl-up2" up "${CL_ARGS[@]}" || fail "second up --nats-nodes 3 --cloud-sql runs" "$(tail -20 "$WORK/cl-up2.err")"
changes "$WORK/cl-up2" >"$WORK/cl-up2.changes"
check "second up --nats-nodes 3 --cloud-sql: creates nothing" test ! -s "$WORK/cl-up2.changes"
[ -s "$WORK/cl-up2.changes" ] && sed 's/^/     | /' "$WORK/cl-up2.changes"
if gcloud_run "$WORK/cl-bad" up "${ARGS[@]}" --nats-nodes=2; then
  fail "up --nats-nodes 2 is refused"
else
  check "up --nats-nodes 2 is refused, and says why" contains "$WORK/cl-bad.err" "--nats-nodes is 1 or 3, got '2'"
fi
# down needs no flag to find the nodes and the instance.
if gcloud_run "$WORK/cl-down1" down --project=test-proj --yes; then pass "down after up --nats-nodes 3 --cloud-sql runs"; else fail "down after up --nats-nodes 3 --cloud-sql runs" "$(tail -20 "$WORK/cl-down1.err")"; fi
cat >"$WORK/cl-down.expected" <<'EOF'
compute instance-groups managed delete vigia-fleet
compute instance-templates delete vigia-fleet-template
compute instances delete vigia-central
compute instances delete vigia-nats-2
compute addresses delete vigia-nats-2-ip
compute instances delete vigia-nats-3
compute addresses delete vigia-nats-3-ip
compute firewall-rules delete vigia-allow-nats-nodes
compute firewall-rules delete vigia-allow-nats-routes
sql instances delete vigia-mysql
services vpc-peerings delete
compute addresses delete vigia-sql-range
secrets delete vigia-sql-sink-password
secrets delete vigia-sql-grafana-password
compute addresses delete vigia-central-ip
compute routers nats delete vigia-nat
compute routers delete vigia-router
compute firewall-rules delete vigia-allow-nats
compute firewall-rules delete vigia-allow-grafana
compute firewall-rules delete vigia-allow-iap-ssh
compute networks subnets delete vigia-subnet
compute networks delete vigia-net
storage rm
secrets delete vigia-grafana-admin-password
secrets delete vigia-nats-tls-key
secrets delete vigia-auth-issuer
secrets delete vigia-auth-service
iam service-accounts delete vigia-central@test-proj.iam.gserviceaccount.com
iam service-accounts delete vigia-fleet@test-proj.iam.gserviceaccount.com
EOF
changes "$WORK/cl-down1" >"$WORK/cl-down.actual"
same_lines "down: deletes the nodes, Cloud SQL and its peering too, users before what they use" \
  "$WORK/cl-down.expected" "$WORK/cl-down.actual"
check "down after up --nats-nodes 3 --cloud-sql: nothing up made is left" leftover

# ---- the command lines, against the real gcloud's parser --------------------
# Offline: in a new network namespace (loopback only, down), with an empty
# configuration and no account, gcloud parses the command and then stops at
# "no active account" (exit 1); a bad flag or value stops it earlier (exit 2).
validate_with_gcloud() {
  local line args out rc bad=0 n=0 a i
  export CLOUDSDK_CONFIG=$WORK/gcloud-config HOME=$WORK/home
  export CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true
  mkdir -p "$CLOUDSDK_CONFIG" "$HOME"
  printf 'placeholder\n' >"$WORK/placeholder"
  printf -- '--password: placeholder\n' >"$WORK/placeholder-flags.yaml"
  while IFS= read -r line; do
    eval "args=(${line#gcloud })"
    # Files that up removed when it ended (its temporary secrets and archive).
    for i in "${!args[@]}"; do
      a=${args[$i]}
      case $a in
        --data-file=*) [ -f "${a#*=}" ] || args[i]=--data-file=$WORK/placeholder ;;
        /tmp/*) [ -e "$a" ] || args[i]=$WORK/placeholder ;;
        --flags-file=*) [ -f "${a#*=}" ] || args[i]=--flags-file=$WORK/placeholder-flags.yaml ;;
      esac
    done
    n=$((n + 1))
    out=$(unshare -n "$REAL_GCLOUD" "${args[@]}" </dev/null 2>&1)
    rc=$?
    if [ $rc -eq 2 ] || ! grep -q "do not currently have an active account" <<<"$out"; then
      bad=$((bad + 1))
      printf 'rejected (exit %s): %s\n%s\n' "$rc" "$line" "$(head -3 <<<"$out")"
    fi
  done < <(cat "$WORK/up1" "$WORK/up2" "$WORK/stress" "$WORK/unstress" "$WORK/down1" \
    "$WORK/cl-up1" "$WORK/cl-down1" | sort -u)
  echo "$n distinct command lines checked"
  [ "$bad" -eq 0 ]
}
if [ -z "$REAL_GCLOUD" ]; then
  echo "note: the Google Cloud CLI is not installed here: the command lines were checked against the fake only"
elif ! unshare -n true 2>/dev/null; then
  echo "note: cannot make a network namespace here: the command lines were not given to the real gcloud"
else
  check "every gcloud command line is accepted by the real gcloud $("$REAL_GCLOUD" version 2>/dev/null | head -1 | awk '{print $NF}')'s parser" \
    validate_with_gcloud
fi

# ---- vm-startup.sh in a throwaway root ---------------------------------------
API=$WORK/api/www
MD=$API/computeMetadata/v1
SA_TOKEN=ya29.test-access-token
GRAFANA_PASSWORD=grafana-pw-$RANDOM$RANDOM
mkdir -p "$MD/instance/attributes" "$MD/instance/service-accounts/default" "$MD/project" \
  "$API/storage/v1/b/test-bucket/o"
for s in vigia-grafana-admin-password vigia-nats-tls-key vigia-auth-issuer vigia-auth-service; do
  mkdir -p "$API/v1/projects/test-proj/secrets/$s/versions"
done
printf '{"access_token":"%s","expires_in":3599,"token_type":"Bearer"}' "$SA_TOKEN" \
  >"$MD/instance/service-accounts/default/token"
printf 'test-proj' >"$MD/project/project-id"
secret_json() { printf '{\n  "name": "projects/1/secrets/x/versions/1",\n  "payload": {\n    "data": "%s",\n    "dataCrc32c": "1"\n  }\n}\n' "$(printf '%s' "$1" | base64 -w0)"; }
secret_json "$GRAFANA_PASSWORD" >"$API/v1/projects/test-proj/secrets/vigia-grafana-admin-password/versions/latest:access"
# The keys up made above, as Secret Manager and the metadata server hold them.
secret_json "$(cat "$KEYS/tls/server-key.pem")" >"$API/v1/projects/test-proj/secrets/vigia-nats-tls-key/versions/latest:access"
secret_json "$(cat "$KEYS/auth/issuer.nk")" >"$API/v1/projects/test-proj/secrets/vigia-auth-issuer/versions/latest:access"
secret_json "$(cat "$KEYS/auth/service.nk")" >"$API/v1/projects/test-proj/secrets/vigia-auth-service/versions/latest:access"
ISSUER_SEED=$(cat "$KEYS/auth/issuer.nk")
SERVICE_SEED=$(cat "$KEYS/auth/service.nk")
# A line of the server's key, to look for where it must never be.
KEY_LINE=$(sed -n 2p "$KEYS/tls/server-key.pem")
printf '#!/bin/sh\necho fake publisher\n' >"$API/storage/v1/b/test-bucket/o/vigia-publisher"

# The source archive as up makes it, from this working tree; a second one
# also has a kernel-module/install.sh, which records that it ran and fails
# when told to.
mkdir -p "$WORK/src-plain" "$WORK/src-kmod/kernel-module"
cp -r scripts publisher nats "$WORK/src-plain/"
cp -r scripts publisher "$WORK/src-kmod/"
cat >"$WORK/src-kmod/kernel-module/install.sh" <<'EOF'
#!/bin/sh
echo "module built in $PWD" >"$VIGIA_TEST_KMOD_MARK"
exit "${VIGIA_TEST_KMOD_EXIT:-0}"
EOF
tar -czf "$WORK/src-plain.tar.gz" -C "$WORK/src-plain" .
tar -czf "$WORK/src-kmod.tar.gz" -C "$WORK/src-kmod" .

# Stubs: systemctl and apt-get record their calls; apt-get "installs" docker
# by putting a docker stub on the PATH; docker records calls and its cwd.
STUBS=$WORK/stubs
mkdir -p "$STUBS"
cat >"$STUBS/systemctl" <<'EOF'
#!/bin/sh
echo "systemctl $*" >>"$VIGIA_TEST_CALLS"
EOF
cat >"$STUBS/apt-get" <<'EOF'
#!/bin/sh
echo "apt-get $*" >>"$VIGIA_TEST_CALLS"
case "$*" in *install*docker.io*) cp "$VIGIA_TEST_DOCKER" "$(dirname "$0")/docker" ;; esac
EOF
cat >"$WORK/docker-stub" <<'EOF'
#!/bin/sh
echo "docker $* (in $PWD)" >>"$VIGIA_TEST_CALLS"
EOF
chmod +x "$STUBS/systemctl" "$STUBS/apt-get" "$WORK/docker-stub"
# The boots see only these commands besides the stubs, so that whatever this
# machine has installed (docker, say) cannot change what they do.
TOOLS=$WORK/tools
mkdir -p "$TOOLS"
for t in bash sh env curl tar gzip sed grep cat cp mv rm mkdir chmod cmp install mktemp sort head \
  cut tr dirname basename uname id sleep base64 stat; do
  ln -s "$(command -v "$t")" "$TOOLS/$t"
done
BOOT_PATH=$STUBS:$TOOLS

python3 "$REPO/scripts/gcp/tests/fake_gcp_api.py" "$WORK/api/www" "$WORK/api/port" "$SA_TOKEN" 2 &
SERVER_PID=$!
for _ in $(seq 50); do [ -s "$WORK/api/port" ] && break; sleep 0.1; done
PORT=$(cat "$WORK/api/port" 2>/dev/null)

# boot NAME ROLE SOURCE-ARCHIVE [VAR=VALUE...]: runs vm-startup.sh in
# $WORK/NAME/root as a VM of ROLE would at boot (again if the root exists).
boot() {
  local name=$1 role=$2 archive=$3
  shift 3
  local dir=$WORK/$name
  mkdir -p "$dir/root/boot"
  printf '%s' "$role" >"$MD/instance/attributes/vigia-role"
  printf 'gs://test-bucket/vigia-source.tar.gz' >"$MD/instance/attributes/vigia-source"
  printf 'gs://test-bucket/vigia-publisher' >"$MD/instance/attributes/vigia-publisher"
  printf '10.20.0.10' >"$MD/instance/attributes/vigia-central-ip"
  printf 'vigia-grafana-admin-password' >"$MD/instance/attributes/vigia-grafana-secret"
  printf 'nats://10.20.0.10:4222' >"$MD/instance/attributes/vigia-gce-audience"
  cp "$KEYS/tls/ca.pem" "$MD/instance/attributes/vigia-nats-ca"
  cp "$KEYS/tls/server.pem" "$MD/instance/attributes/vigia-nats-cert"
  cp "$KEYS/auth/auth.conf" "$MD/instance/attributes/vigia-auth-conf"
  printf 'vigia-nats-tls-key' >"$MD/instance/attributes/vigia-nats-key-secret"
  printf 'vigia-auth-issuer' >"$MD/instance/attributes/vigia-auth-issuer-secret"
  printf 'vigia-auth-service' >"$MD/instance/attributes/vigia-auth-service-secret"
  cp "$archive" "$API/storage/v1/b/test-bucket/o/vigia-source.tar.gz"
  : >"$dir/calls"
  env "$@" PATH="$BOOT_PATH" VIGIA_ROOT="$dir/root" VIGIA_RETRY_DELAY=0.1 \
    VIGIA_METADATA_URL="http://127.0.0.1:$PORT/computeMetadata/v1" \
    VIGIA_STORAGE_URL="http://127.0.0.1:$PORT" VIGIA_SECRETS_URL="http://127.0.0.1:$PORT" \
    VIGIA_TEST_CALLS="$dir/calls" VIGIA_TEST_DOCKER="$WORK/docker-stub" VIGIA_TEST_KMOD_MARK="$dir/kmod-ran" \
    bash "$REPO/scripts/gcp/vm-startup.sh" >"$dir/out" 2>&1
}
mode_of() { stat -c %a "$1"; }

if [ -z "$PORT" ]; then
  fail "fake metadata/storage/secrets server starts on 127.0.0.1"
else
  # A fleet VM on a kernel without Rust: the publisher, on procfs. The server
  # answers 403 to the first two authorized requests, as before IAM settles.
  : >"$WORK/api/requests.log"
  if boot fleet fleet "$WORK/src-plain.tar.gz"; then pass "fleet boot: runs (through 403s while IAM propagates)"; else fail "fleet boot: runs" "$(cat "$WORK/fleet/out")"; fi
  R=$WORK/fleet/root
  check "fleet boot: publisher binary installed from the bucket" cmp "$API/storage/v1/b/test-bucket/o/vigia-publisher" "$R/usr/local/bin/vigia-publisher"
  check "fleet boot: systemd unit installed" cmp publisher/deploy/vigia-publisher.service "$R/etc/systemd/system/vigia-publisher.service"
  check "fleet boot: the publisher proves the VM with its identity token (--gce-identity, the deployment's audience) and verifies NATS with the CA" \
    contains "$R/etc/vigia/publisher.env" "VIGIA_NATS_URL=nats://10.20.0.10:4222" "VIGIA_GCE_IDENTITY=true" \
    "VIGIA_GCE_AUDIENCE=nats://10.20.0.10:4222" "VIGIA_NATS_CA=/etc/vigia/nats-ca.pem" "VIGIA_INTERVAL=1s"
  check "fleet boot: no NATS token or key in the env file" lacks "$R/etc/vigia/publisher.env" "VIGIA_NATS_TOKEN" "VIGIA_NATS_NKEY"
  check "fleet boot: the CA from metadata installed where the env file says, readable by the publisher (0644)" \
    test "$(cmp -s "$KEYS/tls/ca.pem" "$R/etc/vigia/nats-ca.pem" && mode_of "$R/etc/vigia/nats-ca.pem")" = 644
  check "fleet boot: read no secret at all (only the source and the binary)" lacks "$WORK/api/requests.log" "/secrets/"
  check "fleet boot: asked for the source and the binary with the VM's token" contains "$WORK/api/requests.log" \
    "/storage/v1/b/test-bucket/o/vigia-source.tar.gz?alt=media" "/storage/v1/b/test-bucket/o/vigia-publisher?alt=media"
  # The real publisher takes the env file as it is (no conflicting flags).
  publisher_takes_env() {
    # shellcheck disable=SC2046 # one VAR=value word per line of the env file
    env -i $(grep '^VIGIA_' "$R/etc/vigia/publisher.env" | sed "s#=/etc/vigia/#=$R/etc/vigia/#") \
      "$AUTH_DIR/vigia-publisher" --once >/dev/null
  }
  check "fleet boot: vigia-publisher accepts the env file it wrote" publisher_takes_env
  check "fleet boot: env file is root-only (0600)" test "$(mode_of "$R/etc/vigia/publisher.env")" = 600
  check "fleet boot: service enabled and started" contains "$WORK/fleet/calls" \
    "systemctl daemon-reload" "systemctl enable --quiet vigia-publisher.service" "systemctl restart vigia-publisher.service"
  check "fleet boot: says the publisher reads procfs (no kernel module in this release)" contains "$WORK/fleet/out" \
    "kernel module: not in this release"

  # A VM installed by a release with the shared token: the token goes.
  mkdir -p "$WORK/fleet-old/root/etc/vigia"
  printf 'VIGIA_NATS_URL=nats://10.20.0.10:4222\nVIGIA_NATS_TOKEN=old-shared-token\n' >"$WORK/fleet-old/root/etc/vigia/publisher.env"
  if boot fleet-old fleet "$WORK/src-plain.tar.gz"; then
    check "fleet boot over an older install: the shared token is removed, the identity token used" bash -c \
      "! grep -q VIGIA_NATS_TOKEN '$WORK/fleet-old/root/etc/vigia/publisher.env' && grep -q VIGIA_GCE_IDENTITY=true '$WORK/fleet-old/root/etc/vigia/publisher.env'"
  else
    fail "fleet boot over an older install: runs" "$(cat "$WORK/fleet-old/out")"
  fi

  # Second boot of the same VM: nothing changed, nothing restarted.
  if boot fleet fleet "$WORK/src-plain.tar.gz"; then
    check "fleet reboot: publisher not restarted when nothing changed" lacks "$WORK/fleet/calls" "restart"
  else
    fail "fleet reboot: runs" "$(cat "$WORK/fleet/out")"
  fi

  # Kernel module present, kernel without Rust.
  boot fleet-norust fleet "$WORK/src-kmod.tar.gz" || fail "fleet boot without Rust kernel: runs" "$(cat "$WORK/fleet-norust/out")"
  check "fleet boot, kernel without CONFIG_RUST: module not built, procfs, says so" contains "$WORK/fleet-norust/out" \
    "has no Rust support" "the publisher reads procfs"
  check "fleet boot, kernel without CONFIG_RUST: install.sh not run" test ! -e "$WORK/fleet-norust/kmod-ran"

  # Kernel with Rust: install.sh runs before the publisher starts.
  mkdir -p "$WORK/fleet-rust/root/boot"
  printf 'CONFIG_RUST=y\n' >"$WORK/fleet-rust/root/boot/config-$(uname -r)"
  boot fleet-rust fleet "$WORK/src-kmod.tar.gz" || fail "fleet boot with Rust kernel: runs" "$(cat "$WORK/fleet-rust/out")"
  check "fleet boot, kernel with CONFIG_RUST=y: kernel-module/install.sh run, says so" contains "$WORK/fleet-rust/out" \
    "kernel module: built and loaded"
  check "fleet boot, kernel with CONFIG_RUST=y: install.sh ran in kernel-module/" contains "$WORK/fleet-rust/kmod-ran" \
    "/opt/vigia/src/kernel-module"
  check "fleet boot, kernel with CONFIG_RUST=y: publisher installed too" test -x "$WORK/fleet-rust/root/usr/local/bin/vigia-publisher"

  # Kernel with Rust but the build fails: procfs, the boot goes on.
  mkdir -p "$WORK/fleet-kfail/root/boot"
  printf 'CONFIG_RUST=y\n' >"$WORK/fleet-kfail/root/boot/config-$(uname -r)"
  if boot fleet-kfail fleet "$WORK/src-kmod.tar.gz" VIGIA_TEST_KMOD_EXIT=3; then
    check "fleet boot, module build fails: falls back to procfs, says so, publisher installed" contains "$WORK/fleet-kfail/out" \
      "install.sh failed" "falls back to procfs" "publisher installed"
  else
    fail "fleet boot, module build fails: still succeeds" "$(cat "$WORK/fleet-kfail/out")"
  fi

  # The central VM: Docker installed, secrets in a root-only .env, compose up.
  if boot central central "$WORK/src-plain.tar.gz"; then pass "central boot: runs"; else fail "central boot: runs" "$(cat "$WORK/central/out")"; fi
  C=$WORK/central/root/opt/vigia/src
  check "central boot: installs Docker from Debian's packages" contains "$WORK/central/calls" "install -y -q docker.io docker-compose"
  CS=$WORK/central/root/opt/vigia/secrets
  check "central boot: .env holds Grafana's password, the secrets directory, the audience and this project for vigia-auth" contains "$C/.env" \
    "GRAFANA_ADMIN_PASSWORD=$GRAFANA_PASSWORD" "VIGIA_SECRETS_DIR=$CS" \
    "VIGIA_GCE_AUDIENCE=nats://10.20.0.10:4222" "VIGIA_GCE_PROJECTS=test-proj"
  check "central boot: no NATS token in .env" lacks "$C/.env" "VIGIA_NATS_TOKEN"
  check "central boot: .env is root-only (0600)" test "$(mode_of "$C/.env")" = 600
  central_keys() {
    cmp "$KEYS/tls/ca.pem" "$CS/tls/ca.pem" && cmp "$KEYS/tls/server.pem" "$CS/tls/server.pem" &&
      cmp "$KEYS/tls/server-key.pem" "$CS/tls/server-key.pem" && cmp "$KEYS/auth/issuer.nk" "$CS/auth/issuer.nk" &&
      cmp "$KEYS/auth/service.nk" "$CS/auth/service.nk" || return 1
    local f
    for f in tls/server-key.pem auth/issuer.nk auth/service.nk; do
      [ "$(mode_of "$CS/$f")" = 600 ] || { echo "$f is $(mode_of "$CS/$f")"; return 1; }
    done
    [ ! -e "$CS/tls/ca-key.pem" ] || { echo "the CA key reached the VM"; return 1; }
  }
  check "central boot: the CA, the server certificate and key, vigia-auth's seeds in the secrets directory (keys 0600, no CA key)" central_keys
  # Every secret docker-compose.yml requires (${VAR:?...}) must be in .env,
  # or `docker compose up` refuses to start on the VM.
  missing=""
  # shellcheck disable=SC2016 # the pattern is literal text of the compose file
  for var in $(grep -o '\${[A-Z_]*:?' docker-compose.yml | tr -d '${:?' | sort -u); do
    grep -q "^$var=." "$C/.env" || missing="$missing $var"
  done
  if [ -z "$missing" ]; then pass "central boot: .env sets every variable compose requires"; else fail "central boot: .env sets every variable compose requires" "missing:$missing"; fi
  check "central boot: brings the compose stack up from the source" contains "$WORK/central/calls" \
    "docker compose -p vigia up -d --build (in $C)"
  check "central boot: no secret printed" lacks "$WORK/central/out" "$GRAFANA_PASSWORD" "$ISSUER_SEED" "$SERVICE_SEED" "$KEY_LINE"
  # What compose's secrets service then does with those files, for real:
  # takes the CA without its key and the given keys as they are, and renders
  # the same callout block the NATS node VMs get in metadata.
  secrets_service_takes_them() {
    local out
    out=$(VIGIA_SECRETS_DIR="$CS" VIGIA_BIN="$AUTH_DIR" bash scripts/stack-secrets.sh 2>&1) || { echo "$out"; return 1; }
    grep -q "using the given" <<<"$out" || { echo "$out"; return 1; }
    cmp "$CS/nats/server.pem" "$KEYS/tls/server.pem" && cmp "$CS/nats/auth.conf" "$KEYS/auth/auth.conf" &&
      cmp "$CS/auth/issuer.nk" "$KEYS/auth/issuer.nk" && [ -s "$CS/sink/sink.nk" ] && [ ! -e "$CS/tls/ca-key.pem" ]
  }
  check "central boot: the compose secrets service keeps up's certificate and keys, and node 1 trusts the vigia-auth the other nodes trust" \
    secrets_service_takes_them

  # The central VM of up --nats-nodes 3 --cloud-sql: node 1 of the cluster,
  # the database on Cloud SQL (no mysql service), Grafana's user read-only.
  SQL_SINK_PASSWORD=sql-sink-$RANDOM$RANDOM
  SQL_GRAFANA_PASSWORD=sql-grafana-$RANDOM$RANDOM
  for s in vigia-sql-sink-password vigia-sql-grafana-password; do
    mkdir -p "$API/v1/projects/test-proj/secrets/$s/versions"
  done
  secret_json "$SQL_SINK_PASSWORD" >"$API/v1/projects/test-proj/secrets/vigia-sql-sink-password/versions/latest:access"
  secret_json "$SQL_GRAFANA_PASSWORD" >"$API/v1/projects/test-proj/secrets/vigia-sql-grafana-password/versions/latest:access"
  mkdir -p "$MD/instance/network-interfaces/0"
  printf '10.20.0.10' >"$MD/instance/network-interfaces/0/ip"
  ROUTES=nats-route://10.20.0.10:6222,nats-route://10.20.0.11:6222,nats-route://10.20.0.12:6222
  printf '%s' "$ROUTES" >"$MD/instance/attributes/vigia-nats-routes"
  printf '10.20.64.3' >"$MD/instance/attributes/vigia-database-host"
  printf 'vigia-sql-sink-password' >"$MD/instance/attributes/vigia-sql-sink-secret"
  printf 'vigia-sql-grafana-password' >"$MD/instance/attributes/vigia-sql-grafana-secret"
  if boot central-cl central "$WORK/src-plain.tar.gz"; then pass "central boot, cluster and Cloud SQL: runs"; else fail "central boot, cluster and Cloud SQL: runs" "$(cat "$WORK/central-cl/out")"; fi
  C=$WORK/central-cl/root/opt/vigia/src
  check "central boot, cluster and Cloud SQL: .env holds the routes, the other nodes, the database and its passwords" contains "$C/.env" \
    "VIGIA_NATS_ROUTES=$ROUTES" "VIGIA_NATS_ADVERTISE=10.20.0.10" \
    "VIGIA_NATS_CLUSTER_URLS=nats://nats:4222,nats://10.20.0.11:4222,nats://10.20.0.12:4222" \
    "VIGIA_DB_HOST=10.20.64.3" "VIGIA_SINK_DB_PASSWORD=$SQL_SINK_PASSWORD" "VIGIA_GRAFANA_DB_PASSWORD=$SQL_GRAFANA_PASSWORD"
  check "central boot, cluster and Cloud SQL: .env is root-only (0600)" test "$(mode_of "$C/.env")" = 600
  check "central boot, cluster and Cloud SQL: the stack without mysql, with both override files" contains "$WORK/central-cl/calls" \
    "docker compose -f docker-compose.yml -f docker-compose.gcp-cluster.yml -f docker-compose.cloud-sql.yml -p vigia up -d --build --no-deps secrets nats auth sink grafana (in $C)"
  check "central boot, Cloud SQL: Grafana's user restricted to SELECT, the password not on the command line" contains "$WORK/central-cl/calls" \
    "docker run --rm --network host -e MYSQL_PWD mysql:8.0 mysql -h 10.20.64.3 -u vigia_sink" "GRANT SELECT ON vigia.* TO 'vigia_grafana'@'%'"
  check "central boot, cluster and Cloud SQL: no secret printed or on a command line" lacks "$WORK/central-cl/out" \
    "$SQL_SINK_PASSWORD" "$SQL_GRAFANA_PASSWORD" "$ISSUER_SEED" "$SERVICE_SEED" "$KEY_LINE"
  check "central boot, Cloud SQL: no password in any call" lacks "$WORK/central-cl/calls" "$SQL_SINK_PASSWORD" "$SQL_GRAFANA_PASSWORD"
  # Every variable the compose files require is set.
  missing=""
  # shellcheck disable=SC2016 # the pattern is literal text of the compose files
  for var in $(grep -oh '\${[A-Z_]*:?' docker-compose.yml docker-compose.gcp-cluster.yml docker-compose.cloud-sql.yml | tr -d '${:?' | sort -u); do
    grep -q "^$var=." "$C/.env" || missing="$missing $var"
  done
  if [ -z "$missing" ]; then pass "central boot, cluster and Cloud SQL: .env sets every variable the three compose files require"; else fail "central boot, cluster and Cloud SQL: .env sets every variable the compose files require" "missing:$missing"; fi

  # A NATS node VM: the pinned nats-server in Docker with its name and the
  # routes, secure as node 1: the certificate, its key in a root-only file
  # (never on a command line) and the callout block. Its token file from an
  # earlier release goes.
  printf 'nats-2' >"$MD/instance/attributes/vigia-nats-name"
  N=$WORK/nats-node/root/opt/vigia/nats
  mkdir -p "$N"
  printf 'authorization { token: "old" }\n' >"$N/auth.conf"
  printf 'include ./auth.conf\n' >"$N/node.conf"
  if boot nats-node nats "$WORK/src-plain.tar.gz"; then pass "NATS node boot: runs"; else fail "NATS node boot: runs" "$(cat "$WORK/nats-node/out")"; fi
  version=$(tr -d '[:space:]' <nats/nats-server-auth.version)
  check "NATS node boot: nats $version runs the secure cluster config as node nats-2 with the routes" contains "$WORK/nats-node/calls" \
    "docker run -d --name vigia-nats --restart unless-stopped --network host" \
    "nats:$version-alpine -c /etc/nats/nats-cluster-secure.conf --name nats-2 --routes $ROUTES"
  node_files() {
    cmp "$N/secrets/server-key.pem" "$KEYS/tls/server-key.pem" && cmp "$N/secrets/server.pem" "$KEYS/tls/server.pem" &&
      cmp "$N/secrets/auth.conf" "$KEYS/auth/auth.conf" && cmp "$N/nats-cluster-secure.conf" nats/cluster/nats-cluster-secure.conf &&
      cmp "$N/nats-cluster.conf" nats/cluster/nats-cluster.conf || return 1
    [ "$(mode_of "$N/secrets/server-key.pem")" = 600 ] || { echo "the key is $(mode_of "$N/secrets/server-key.pem")"; return 1; }
    if [ -e "$N/auth.conf" ] || [ -e "$N/node.conf" ]; then echo "the old token files are still there"; return 1; fi
  }
  check "NATS node boot: the certificate, its key (0600) and the callout block beside the cluster configs; no token file left" node_files
  check "NATS node boot: the key is never printed nor in a call" lacks "$WORK/nats-node/out" "$KEY_LINE"
  check "NATS node boot: the key is not in docker's arguments" lacks "$WORK/nats-node/calls" "$KEY_LINE"
  pinned=${VIGIA_TEST_NATS_SERVER_AUTH:-/opt/vigia/nats-server-$version/bin/nats-server}
  node_config_valid() {
    local t=$WORK/nats-node/check
    [ -x "$pinned" ] || { echo "nats-server $version absent at $pinned (scripts/services.sh installs it)"; return 1; }
    mkdir -p "$t"
    cp -r "$N/secrets" "$t/"
    sed "s#store_dir: /data#store_dir: $t/store#" "$N/nats-cluster.conf" >"$t/nats-cluster.conf"
    sed "s#/etc/nats/secrets#$t/secrets#" "$N/nats-cluster-secure.conf" >"$t/nats-cluster-secure.conf"
    "$pinned" -c "$t/nats-cluster-secure.conf" --name nats-2 --routes "$ROUTES" -t
  }
  check "NATS node boot: nats-server $version accepts the node's configuration" node_config_valid
  rm -f "$MD/instance/attributes/vigia-nats-routes" "$MD/instance/attributes/vigia-database-host" \
    "$MD/instance/attributes/vigia-nats-name"

  # A wrong role stops the boot with a clear line.
  printf 'bogus' >"$MD/instance/attributes/vigia-role"
  if env PATH="$BOOT_PATH" VIGIA_ROOT="$WORK/bogus" VIGIA_RETRY_DELAY=0.1 \
    VIGIA_METADATA_URL="http://127.0.0.1:$PORT/computeMetadata/v1" VIGIA_STORAGE_URL="http://127.0.0.1:$PORT" \
    bash scripts/gcp/vm-startup.sh >"$WORK/bogus.out" 2>&1; then
    fail "unknown role: the boot fails"
  else
    check "unknown role: the boot fails and says why" contains "$WORK/bogus.out" "unknown vigia-role 'bogus'"
  fi
fi

# ---- install-publisher.sh ------------------------------------------------------
IR=$WORK/install/root
mkdir -p "$IR"
printf 'binary\n' >"$WORK/install/vigia-publisher"
install_run() {
  : >"$WORK/install/calls"
  env PATH="$BOOT_PATH" VIGIA_ROOT="$IR" VIGIA_TEST_CALLS="$WORK/install/calls" "$@" >"$WORK/install/out" 2>&1
}
if install_run VIGIA_NATS_TOKEN=tok1 bash scripts/install-publisher.sh --binary "$WORK/install/vigia-publisher" \
  --nats-url nats://10.0.0.1:4222 --host web-1; then
  check "install-publisher: binary, unit and env file in place" contains "$IR/etc/vigia/publisher.env" \
    "VIGIA_NATS_URL=nats://10.0.0.1:4222" "VIGIA_HOST=web-1" "VIGIA_NATS_TOKEN=tok1"
  check "install-publisher: env file 0600, binary 0755" \
    test "$(mode_of "$IR/etc/vigia/publisher.env") $(mode_of "$IR/usr/local/bin/vigia-publisher")" = "600 755"
  check "install-publisher: enables and starts the service" contains "$WORK/install/calls" \
    "systemctl daemon-reload" "systemctl enable" "systemctl restart vigia-publisher.service"
else
  fail "install-publisher: first run" "$(cat "$WORK/install/out")"
fi
if install_run bash scripts/install-publisher.sh --binary "$WORK/install/vigia-publisher"; then
  check "install-publisher again: no restart, settings kept" lacks "$WORK/install/calls" "restart" "daemon-reload"
  check "install-publisher again: settings not given are kept" contains "$IR/etc/vigia/publisher.env" \
    "VIGIA_NATS_URL=nats://10.0.0.1:4222" "VIGIA_NATS_TOKEN=tok1"
else
  fail "install-publisher: second run" "$(cat "$WORK/install/out")"
fi
if install_run bash scripts/install-publisher.sh --binary "$WORK/install/vigia-publisher" --interval 2s; then
  check "install-publisher with a new setting: replaces it, restarts" contains "$WORK/install/calls" "systemctl restart"
  check "install-publisher with a new setting: one line per key" test "$(grep -c '^VIGIA_' "$IR/etc/vigia/publisher.env")" = 4
else
  fail "install-publisher: third run" "$(cat "$WORK/install/out")"
fi
if install_run bash scripts/install-publisher.sh --binary "$WORK/install/vigia-publisher" --host 'a"b'; then
  fail "install-publisher refuses a value that would break the env file"
else
  pass "install-publisher refuses a value that would break the env file"
fi
# From the shared token to the identity token and the CA: the token goes,
# the CA is installed, the publisher restarts; once more changes nothing.
if install_run bash scripts/install-publisher.sh --binary "$WORK/install/vigia-publisher" \
  --gce-identity --gce-audience nats://10.0.0.1:4222 --nats-ca "$KEYS/tls/ca.pem"; then
  check "install-publisher --gce-identity --nats-ca: the token removed, the identity and the installed CA set" bash -c \
    "! grep -q VIGIA_NATS_TOKEN '$IR/etc/vigia/publisher.env' &&
     grep -qx VIGIA_GCE_IDENTITY=true '$IR/etc/vigia/publisher.env' &&
     grep -qx VIGIA_NATS_CA=/etc/vigia/nats-ca.pem '$IR/etc/vigia/publisher.env' &&
     cmp -s '$KEYS/tls/ca.pem' '$IR/etc/vigia/nats-ca.pem'"
  check "install-publisher --gce-identity: restarts the publisher" contains "$WORK/install/calls" "systemctl restart"
  install_run bash scripts/install-publisher.sh --binary "$WORK/install/vigia-publisher" \
    --gce-identity --gce-audience nats://10.0.0.1:4222 --nats-ca "$KEYS/tls/ca.pem"
  check "install-publisher --gce-identity again: no restart" lacks "$WORK/install/calls" "restart"
else
  fail "install-publisher --gce-identity --nats-ca" "$(cat "$WORK/install/out")"
fi
if install_run VIGIA_NATS_TOKEN=tok bash scripts/install-publisher.sh --binary "$WORK/install/vigia-publisher" --gce-identity; then
  fail "install-publisher refuses a token together with --gce-identity"
else
  check "install-publisher refuses a token together with --gce-identity, and says so" contains "$WORK/install/out" \
    "give --gce-identity or VIGIA_NATS_TOKEN, not both"
fi

# ---- the unit ----------------------------------------------------------------
UR=$WORK/unit-root
mkdir -p "$UR/usr/local/bin" "$UR/etc/systemd/system" "$UR/usr/lib/systemd"
cp -r /usr/lib/systemd/system "$UR/usr/lib/systemd/"
printf '#!/bin/sh\n' >"$UR/usr/local/bin/vigia-publisher"
chmod +x "$UR/usr/local/bin/vigia-publisher"
cp publisher/deploy/vigia-publisher.service "$UR/etc/systemd/system/"
verify_unit() {
  local out
  out=$(systemd-analyze verify --root="$UR" --man=no vigia-publisher.service 2>&1) || { echo "$out"; return 1; }
  [ -z "$out" ] || { echo "$out"; return 1; }
}
check "unit: systemd-analyze verify has nothing to say" verify_unit
exposure() {
  local score
  score=$(systemd-analyze security --offline=yes --root="$UR" vigia-publisher.service 2>&1 \
    | sed -n 's/.*Overall exposure level for vigia-publisher.service: \([0-9.]*\).*/\1/p')
  echo "exposure $score"
  [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }'
}
check "unit: systemd-analyze security exposure at most 3.0 (OK)" exposure
check "unit: hardening and restart directives" contains publisher/deploy/vigia-publisher.service \
  "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" "DynamicUser=yes" \
  "CapabilityBoundingSet=CAP_KILL CAP_SYS_PTRACE" "AmbientCapabilities=CAP_KILL CAP_SYS_PTRACE" \
  "Restart=always" "EnvironmentFile=/etc/vigia/publisher.env"
check "unit: nothing that would hide processes from it" bash -c \
  '! grep -E "^(ProtectProc=invisible|ProcSubset=pid|PrivateUsers=yes|PrivatePIDs=yes)" publisher/deploy/vigia-publisher.service'

finish
