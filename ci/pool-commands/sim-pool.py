#!/usr/bin/env python3
"""An e2e-gate pool command (`upgrade apply --cloud exec --pool-command CMD`) that drives the
simulated cloud's HTTP API (`/sim/cloud` on the embedded cluster's API server).

    sim-pool.py [--server URL] groups
    sim-pool.py [--server URL] instances POOL
    sim-pool.py [--server URL] set-desired POOL ZONE N
    sim-pool.py [--server URL] terminate ID
    sim-pool.py [--server URL] set-version POOL VERSION

URL defaults to $SIM_SERVER, else to the server of $KUBECONFIG (e2e-gate sets it to the
cluster being upgraded). JSON on stdout; on failure a message on stderr and exit 1.
The simulated cloud has one group per pool and zone (`<pool>-<zone>`); this command shows
e2e-gate one pool with a desired size per zone, which is the protocol's shape. Standard
library only, so it runs wherever python3 does; a Terraform- or doctl-backed command has the
same five calls (README: "Node pools through a command").
"""

import json
import os
import sys
import urllib.error
import urllib.request

LIFECYCLE = {"Pending": "pending", "InService": "in-service", "Terminated": "terminated"}
LB = {"InService": "in-service", "OutOfService": "out-of-service"}


class Failure(Exception):
    pass


def request(server, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        server.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        raise Failure(f"{method} {path}: HTTP {e.code}: {e.read().decode(errors='replace')}")
    except urllib.error.URLError as e:
        raise Failure(f"{method} {path}: cannot reach {server}: {e.reason}")


def sim_groups(server):
    return request(server, "GET", "/sim/cloud/groups")["groups"]


def groups(server):
    pools = {}
    for g in sim_groups(server):
        p = pools.setdefault(
            g["pool"],
            {"name": g["pool"], "zones": {}, "max_size": 1000,
             "version": g["kubelet_version"], "load_balancer": False},
        )
        p["zones"][g["zone"]] = g["desired"]
        p["load_balancer"] |= any(i.get("lb_state") for i in g.get("instances", []))
    return {"groups": list(pools.values())}


def instances(server, pool):
    gs = [g for g in sim_groups(server) if g["pool"] == pool]
    if not gs:
        raise Failure(f"pool {pool!r} not found")
    out = []
    for g in gs:
        for i in g.get("instances", []):
            out.append({
                "id": i["id"], "zone": i["zone"], "version": i["kubelet_version"],
                "state": LIFECYCLE.get(i["lifecycle"], "pending"),
                "lb": LB.get(i.get("lb_state")) if i.get("lb_state") else None,
            })
    return {"instances": out}


def set_desired(server, pool, zone, n):
    gs = sim_groups(server)
    match = [g for g in gs if g["pool"] == pool and g["zone"] == zone]
    if not match:
        if any(g["pool"] == pool for g in gs):
            raise Failure(f"pool {pool!r} cannot launch in zone {zone!r}")
        raise Failure(f"pool {pool!r} not found")
    if not n.isdigit():
        raise Failure(f"desired size {n!r} is not a whole number")
    request(server, "PUT", f"/sim/cloud/groups/{match[0]['name']}/desired", {"desired": int(n)})
    return {}


def terminate(server, instance):
    try:
        request(server, "POST", f"/sim/cloud/instances/{instance}/terminate", {"decrement": True})
    except Failure:
        # 404 means unknown or already terminated: the latter succeeds (the call is idempotent).
        known = any(i["id"] == instance for g in sim_groups(server) for i in g.get("instances", []))
        if not known:
            raise Failure(f"instance {instance!r} not found")
    return {}


def set_version(server, pool, version):
    request(server, "PUT", f"/sim/cloud/groups/{pool}/launch-template", {"kubelet_version": version})
    return {}


CALLS = {
    "groups": (groups, 0),
    "instances": (instances, 1),
    "set-desired": (set_desired, 3),
    "terminate": (terminate, 1),
    "set-version": (set_version, 2),
}


def kubeconfig_server():
    """The first `server:` of $KUBECONFIG (the embedded cluster writes a one-cluster file)."""
    path = os.environ.get("KUBECONFIG", "").split(":")[0]
    if not path:
        return ""
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.strip().partition(":")
                if key == "server":
                    return value.strip().strip('"')
    except OSError as e:
        raise Failure(f"cannot read KUBECONFIG {path}: {e}")
    return ""


def main(argv):
    server = os.environ.get("SIM_SERVER", "") or kubeconfig_server()
    if len(argv) >= 2 and argv[0] == "--server":
        server, argv = argv[1], argv[2:]
    if not server:
        raise Failure("no server: pass --server URL, or set SIM_SERVER or KUBECONFIG")
    if not argv or argv[0] not in CALLS:
        raise Failure(f"unknown call {argv[:1]}; valid: {', '.join(CALLS)}")
    fn, arity = CALLS[argv[0]]
    if len(argv) - 1 != arity:
        raise Failure(f"{argv[0]} takes {arity} argument(s), got {len(argv) - 1}")
    json.dump(fn(server, *argv[1:]), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except Failure as e:
        print(f"sim-pool: {e}", file=sys.stderr)
        sys.exit(1)
