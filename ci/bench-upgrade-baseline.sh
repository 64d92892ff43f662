#!/usr/bin/env bash
# The kubectl-drain baseline of the upgrade benchmark (benches/upgrade.rs): upgrades every
# outdated node of a running simulated cluster the way naive operators do, one node at a
# time: surge one new node in the old node's zone group, wait until it is Ready
# (`kubectl wait`), `kubectl drain` the old node, terminate its instance with decrement,
# repeat.
#
#   ci/bench-upgrade-baseline.sh KUBECONFIG TARGET_VERSION [REPORT_JSON]
#
# Needs kubectl (ci/install-kubectl.sh), curl and jq. The cloud calls go to the simulator's
# cloud API (`/sim/cloud`, same server as the API); the measures come from `/sim/metrics`
# before and after: simulated seconds, evictions allowed/refused, PDB seconds below
# desiredHealthy (`availability`, simulated seconds) and API requests by verb. Eviction
# amplification: kubectl's "evicting pod" lines against the pods that existed at the start
# (a pod created during the run that is evicted again, or a StatefulSet pod evicted twice,
# is the same replica moved again). Prints one line per node on stderr and the JSON report
# on stdout (and to REPORT_JSON). BASELINE_MAX_NODES=N stops after N nodes (smoke runs).
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 KUBECONFIG TARGET_VERSION [REPORT_JSON]" >&2
  exit 2
fi
export KUBECONFIG="$1"
TARGET="$2"
REPORT="${3:-}"
for tool in kubectl curl jq; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found" >&2; exit 2; }
done
API=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

sim() { curl -fsS "$API/sim/$1"; }
sim_now() { sim metrics | jq '.sim_seconds'; }
now() { date +%s.%N; }

sim metrics >"$WORK/metrics0.json"
kubectl get pods -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}' \
  | sort >"$WORK/pods0.txt"
T0=$(now)
S0=$(jq '.sim_seconds' "$WORK/metrics0.json")

# New instances get the target kubelet (every pool's launch template).
sim cloud/groups | jq -r '.groups[].pool' | sort -u | while read -r pool; do
  curl -fsS -X PUT -H 'content-type: application/json' \
    -d "{\"kubelet_version\": \"$TARGET\"}" "$API/sim/cloud/groups/$pool/launch-template" >/dev/null
done

# Outdated nodes: name, group (<pool>-<zone> of the simulator's labels), instance id.
kubectl get nodes -o json | jq -r --arg t "$TARGET" '
  .items[] | select(.status.nodeInfo.kubeletVersion != $t)
  | [.metadata.name, .spec.providerID] | @tsv' | sort | head -n "${BASELINE_MAX_NODES:-1000000}" >"$WORK/old.tsv"
sim cloud/groups | jq -r '.groups[] | .name as $g | .instances[] | [.node_name, $g, .id] | @tsv' \
  | sort >"$WORK/instances.tsv"
: >"$WORK/evicted.txt"
: >"$WORK/nodes.jsonl"
total=$(wc -l <"$WORK/old.tsv")
i=0
while IFS=$'\t' read -r node _provider; do
  i=$((i + 1))
  read -r group id < <(awk -F'\t' -v n="$node" '$1 == n {print $2, $3}' "$WORK/instances.tsv")
  s_start=$(sim_now)
  # 1. Surge one instance in the old node's group.
  before=$(sim cloud/groups | jq -r --arg g "$group" '.groups[] | select(.name == $g) | .instances[].id' | sort)
  desired=$(sim cloud/groups | jq --arg g "$group" '.groups[] | select(.name == $g) | .desired')
  curl -fsS -X PUT -H 'content-type: application/json' -d "{\"desired\": $((desired + 1))}" \
    "$API/sim/cloud/groups/$group/desired" >/dev/null
  # 2. Wait for its Node to register, then to be Ready.
  new=""
  while [ -z "$new" ]; do
    new=$(sim cloud/groups | jq -r --arg g "$group" --arg before "$before" '
      .groups[] | select(.name == $g) | .instances[]
      | select(.lifecycle == "InService" and (.id as $i | ($before | split("\n") | index($i)) == null))
      | .node_name' | head -n 1)
    [ -n "$new" ] || sleep 0.05
  done
  until kubectl get node "$new" >/dev/null 2>&1; do sleep 0.05; done
  kubectl wait --for=condition=Ready "node/$new" --timeout=600s >/dev/null
  s_ready=$(sim_now)
  # 3. Drain the old node (cordon + evictions paced by PDBs, kubectl retries 429s).
  w0=$(now)
  kubectl drain "$node" --ignore-daemonsets --delete-emptydir-data --timeout=600s \
    >"$WORK/drain.out" 2>&1 || { cat "$WORK/drain.out" >&2; exit 1; }
  w1=$(now)
  sed -n 's/^evicting pod \(.*\)$/\1/p' "$WORK/drain.out" | sort -u >>"$WORK/evicted.txt"
  s_drained=$(sim_now)
  # 4. Terminate its instance with decrement (the Node and its pods go with it).
  curl -fsS -X POST -H 'content-type: application/json' -d '{"decrement": true}' \
    "$API/sim/cloud/instances/$id/terminate" >/dev/null
  s_end=$(sim_now)
  jq -cn --arg node "$node" --arg new "$new" --argjson a "$s_start" --argjson b "$s_ready" \
    --argjson c "$s_drained" --argjson d "$s_end" --argjson dw "$(awk -v a="$w0" -v b="$w1" 'BEGIN {print b - a}')" \
    '{node: $node, replacement: $new, surge_wait_sim_seconds: ($b - $a),
      drain_sim_seconds: ($c - $b), terminate_sim_seconds: ($d - $c), drain_wall_seconds: $dw}' \
    | tee -a "$WORK/nodes.jsonl" \
    | jq -r --arg i "$i" --arg n "$total" \
      '"baseline: \($i)/\($n) \(.node) → \(.replacement): surge wait \(.surge_wait_sim_seconds|floor) s, drain \(.drain_sim_seconds|floor) s (\(.drain_wall_seconds*100|floor/100) s wall), terminate \(.terminate_sim_seconds|floor) s (simulated)"' >&2
done <"$WORK/old.tsv"
T1=$(now)
sim metrics >"$WORK/metrics1.json"

# Evicted pods that existed at the start = distinct replicas moved; the rest moved again.
sort "$WORK/evicted.txt" | uniq -c | awk '{print $2, $1}' >"$WORK/evicted_counts.txt"
evict_lines=$(wc -l <"$WORK/evicted.txt")
originals=$(awk 'NR == FNR {orig[$1] = 1; next} ($1 in orig) {n++} END {print n + 0}' \
  "$WORK/pods0.txt" "$WORK/evicted_counts.txt")

jq -n --slurpfile m0 "$WORK/metrics0.json" --slurpfile m1 "$WORK/metrics1.json" \
  --slurpfile nodes <(jq -s . "$WORK/nodes.jsonl") \
  --argjson wall "$(awk -v a="$T0" -v b="$T1" 'BEGIN {print b - a}')" --argjson s0 "$S0" \
  --argjson evict_lines "$evict_lines" --argjson originals "$originals" '
  def sumv(f): [.[] | f] | add // 0;
  ($m0[0]) as $a | ($m1[0]) as $b | ($nodes[0]) as $n |
  {
    baseline: "kubectl-drain",
    nodes_replaced: ($n | length),
    duration_seconds: $wall,
    duration_sim_seconds: ($b.sim_seconds - $s0),
    time_scale: ($wall / ($b.sim_seconds - $s0)),
    surge_wait_sim_seconds: ($n | sumv(.surge_wait_sim_seconds)),
    drain_sim_seconds: ($n | sumv(.drain_sim_seconds)),
    terminate_sim_seconds: ($n | sumv(.terminate_sim_seconds)),
    kubectl_drain_wall_seconds: ($n | sumv(.drain_wall_seconds)),
    evictions: (($b.evictions | to_entries | sumv(.value.allowed)) - ($a.evictions | to_entries | sumv(.value.allowed))),
    evictions_refused: (($b.evictions | to_entries | sumv(.value.refused)) - ($a.evictions | to_entries | sumv(.value.refused))),
    evicting_lines: $evict_lines,
    replicas_moved: $originals,
    pdb_violation_sim_seconds: (($b.availability | to_entries | sumv(.value.seconds_below_min)) - ($a.availability | to_entries | sumv(.value.seconds_below_min))),
    kube_api_calls: (
      [$b.requests | to_entries[] | {verb: (.key | split(" ")[0]), n: (.value - ($a.requests[.key] // 0))}]
      | group_by(.verb) | map({key: .[0].verb, value: (map(.n) | add)}) | map(select(.value > 0)) | from_entries),
    per_node: $n
  }' >"$WORK/report.json"
if [ -n "$REPORT" ]; then cp "$WORK/report.json" "$REPORT"; fi
jq 'del(.per_node)' "$WORK/report.json"
