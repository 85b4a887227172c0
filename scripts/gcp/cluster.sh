# shellcheck shell=bash
# The three-node NATS cluster of scripts/gcp/up --nats-nodes 3, sourced by up
# and down after lib.sh. Node 1 is the central VM's compose `nats` service
# (docker-compose.gcp-cluster.yml turns it into a cluster node); nodes 2 and 3
# are two small VMs of their own ($PREFIX-nats-2, -3) running only nats-server
# in Docker, each at a reserved internal IP. The sink keeps the streams on all
# three (--stream-replicas 3), publishers take all three URLs: losing any one
# VM, the central one included, loses no telemetry already accepted, and the
# fleet keeps publishing to the other two. Every node is secure as node 1 is
# (nats/cluster/nats-cluster-secure.conf): the server certificate (its key
# from Secret Manager) and vigia-auth's callout block (public keys only), so a
# client connecting to any node is authorized by vigia-auth on the central VM.

# up_nats_cluster: firewall rules, addresses and the two node VMs.
up_nats_cluster() {
  # Clients (the fleet, and the sink on the central VM) to every node;
  # routes between the nodes only.
  firewall_rule "$FW_NATS_NODES" --rules=tcp:4222 --source-tags="$TAG_FLEET,$TAG_CENTRAL" \
    --target-tags="$TAG_NATS" --description="vigia: publishers and the sink to the NATS nodes"
  firewall_rule "$FW_NATS_ROUTES" --rules=tcp:6222 --source-tags="$TAG_CENTRAL,$TAG_NATS" \
    --target-tags="$TAG_CENTRAL,$TAG_NATS" --description="vigia: NATS cluster routes"
  local i
  for i in 0 1; do
    if exists compute addresses describe "${NATS_ADDRESSES[$i]}" --region="$REGION"; then
      say_exists "internal address ${NATS_ADDRESSES[$i]}"
    else
      gc compute addresses create "${NATS_ADDRESSES[$i]}" --region="$REGION" --subnet="$SUBNET" \
        --addresses="${NATS_NODE_IPS[$i]}"
    fi
  done
  for i in 0 1; do
    if exists compute instances describe "${NATS_VMS[$i]}" --zone="$ZONE"; then
      say_exists "NATS node ${NATS_VMS[$i]}"
    else
      # No external address: outbound (Docker's image pull) through Cloud NAT.
      gc compute instances create "${NATS_VMS[$i]}" --zone="$ZONE" --machine-type="$NATS_MACHINE_TYPE" \
        --subnet="$SUBNET" --private-network-ip="${NATS_NODE_IPS[$i]}" --no-address --tags="$TAG_NATS" \
        --image-family="$IMAGE_FAMILY" --image-project="$IMAGE_PROJECT" \
        --boot-disk-size="${NATS_DISK_GB}GB" --boot-disk-type=pd-balanced \
        --service-account="$SA_CENTRAL" --scopes=cloud-platform \
        --shielded-secure-boot --shielded-vtpm --shielded-integrity-monitoring \
        --metadata-from-file="$(metadata_arg "startup-script=$STARTUP_SCRIPT" "vigia-nats-cert=$TLS_DIR/server.pem" \
          "vigia-auth-conf=$AUTH_DIR/auth.conf")" \
        --metadata="$(metadata_arg enable-oslogin=TRUE vigia-role=nats "vigia-source=$OBJ_SOURCE" \
          "vigia-nats-key-secret=$SECRET_TLS_KEY" "vigia-nats-name=nats-$((i + 2))" "vigia-nats-routes=$NATS_ROUTES")"
    fi
  done
}

# down_nats_cluster: the node VMs, then their addresses and rules.
down_nats_cluster() {
  local i rule
  for i in 0 1; do
    delete_if_exists "NATS node ${NATS_VMS[$i]}" -- compute instances describe "${NATS_VMS[$i]}" --zone="$ZONE" \
      -- compute instances delete "${NATS_VMS[$i]}" --zone="$ZONE" --delete-disks=all
    delete_if_exists "internal address ${NATS_ADDRESSES[$i]}" \
      -- compute addresses describe "${NATS_ADDRESSES[$i]}" --region="$REGION" \
      -- compute addresses delete "${NATS_ADDRESSES[$i]}" --region="$REGION"
  done
  for rule in "$FW_NATS_NODES" "$FW_NATS_ROUTES"; do
    delete_if_exists "firewall rule $rule" -- compute firewall-rules describe "$rule" \
      -- compute firewall-rules delete "$rule"
  done
}
