#!/usr/bin/env python3
"""The AWS side of the `--cloud aws` test rig, against moto's server (boto3 from
ci/install-moto.sh's venv). Independent of e2e-gate's own AWS code: the tests read the
groups through this script to check what the engine changed and restored.

  cluster.py create --endpoint URL --cluster NAME --topology FILE --target-version V
                    [--lb-pool POOL]... [--suspended GROUP=PROCESS]...
                    [--multi-zone-pool POOL]... [--held GROUP]...
      Makes, for each pool of a simulated-cluster topology, a launch template with two
      versions (1 boots the pool's kubelet, 2 boots V), one Auto Scaling group per zone named
      <pool>-<zone> (desired = max = size_per_zone, so a surge must raise MaxSize), tagged
      kubernetes.io/cluster/NAME and e2e-gate.io/pool=<pool>; a target group for each
      --lb-pool; an untagged bastion group the engine must leave alone. A --multi-zone-pool
      is instead one group named <pool> over all its zones (EKS managed node group style,
      desired = max = size_per_zone x zones); moto puts each launch in a random one of them.
      A --held group is left as a run killed before restoring it leaves it: MaxSize one
      above its size, AZRebalance suspended, and e2e-gate's record of both.
      Prints
      {"versions": {"1": kubelet, "2": V}} (what the mirroring simulator maps versions with).
  cluster.py dump --endpoint URL
      Prints every group: desired, min, max, launch template version, suspended processes,
      tags, instances (id, zone, lifecycle, protected).
"""
import argparse
import json
import sys
import tomllib

import boto3

REGION = "us-east-1"


def clients(endpoint):
    kw = dict(endpoint_url=endpoint, region_name=REGION,
              aws_access_key_id="rig", aws_secret_access_key="rig")
    return boto3.client("ec2", **kw), boto3.client("autoscaling", **kw), boto3.client("elbv2", **kw)


def create(a):
    ec2, asg, elb = clients(a.endpoint)
    with open(a.topology, "rb") as f:
        topo = tomllib.load(f)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    zones = sorted({z for p in topo["pools"] for z in p["zones"]})
    subnets = {}
    for i, z in enumerate(zones):
        subnets[z] = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                       AvailabilityZone=z)["Subnet"]["SubnetId"]
    suspended = dict(s.split("=", 1) for s in a.suspended)
    versions = {}
    for p in topo["pools"]:
        lt = f"lt-{p['name']}"
        data = {"ImageId": "ami-12c6146b", "InstanceType": "t3.large"}
        ec2.create_launch_template(LaunchTemplateName=lt, LaunchTemplateData=data,
                                   VersionDescription=p["kubelet_version"])
        ec2.create_launch_template_version(LaunchTemplateName=lt, LaunchTemplateData=data,
                                           VersionDescription=a.target_version)
        versions = {"1": p["kubelet_version"], "2": a.target_version}
        tgs = []
        if p["name"] in a.lb_pool:
            tgs = [elb.create_target_group(Name=f"tg-{p['name']}", Protocol="HTTP", Port=80,
                                           VpcId=vpc, TargetType="instance")
                   ["TargetGroups"][0]["TargetGroupArn"]]
        tags = [{"Key": f"kubernetes.io/cluster/{a.cluster}", "Value": "owned",
                 "PropagateAtLaunch": True},
                {"Key": "e2e-gate.io/pool", "Value": p["name"], "PropagateAtLaunch": True}]
        if p["name"] in a.multi_zone_pool:
            # Zones, not subnets: moto puts every instance of a multi-subnet group in the
            # first subnet, but picks a random zone per launch from AvailabilityZones.
            n = p["size_per_zone"] * len(p["zones"])
            asg.create_auto_scaling_group(
                AutoScalingGroupName=p["name"],
                LaunchTemplate={"LaunchTemplateName": lt, "Version": "1"},
                MinSize=0, MaxSize=n, DesiredCapacity=n,
                AvailabilityZones=p["zones"], TargetGroupARNs=tgs, Tags=tags)
            continue
        for z in p["zones"]:
            name = f"{p['name']}-{z}"
            n = p["size_per_zone"]
            asg.create_auto_scaling_group(
                AutoScalingGroupName=name,
                LaunchTemplate={"LaunchTemplateName": lt, "Version": "1"},
                MinSize=0, MaxSize=n, DesiredCapacity=n,
                VPCZoneIdentifier=subnets[z], TargetGroupARNs=tgs, Tags=tags)
            if name in suspended:
                asg.suspend_processes(AutoScalingGroupName=name,
                                      ScalingProcesses=[suspended[name]])
    for g in a.held:
        size = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[g])["AutoScalingGroups"][0]
        asg.create_or_update_tags(Tags=[{
            "ResourceId": g, "ResourceType": "auto-scaling-group", "Key": "e2e-gate.io/held",
            "Value": f"max={size['MaxSize']};suspended=AZRebalance", "PropagateAtLaunch": False}])
        asg.update_auto_scaling_group(AutoScalingGroupName=g, MaxSize=size["MaxSize"] + 1)
        asg.suspend_processes(AutoScalingGroupName=g, ScalingProcesses=["AZRebalance"])
    ec2.create_launch_template(LaunchTemplateName="lt-bastion",
                               LaunchTemplateData={"ImageId": "ami-12c6146b"})
    asg.create_auto_scaling_group(
        AutoScalingGroupName="bastion", LaunchTemplate={"LaunchTemplateName": "lt-bastion"},
        MinSize=1, MaxSize=1, DesiredCapacity=1, VPCZoneIdentifier=subnets[zones[0]],
        Tags=[{"Key": f"kubernetes.io/cluster/{a.cluster}", "Value": "owned",
               "PropagateAtLaunch": True}])
    json.dump({"versions": versions}, sys.stdout)


def dump(a):
    _, asg, _ = clients(a.endpoint)
    out = {}
    for page in asg.get_paginator("describe_auto_scaling_groups").paginate():
        for g in page["AutoScalingGroups"]:
            out[g["AutoScalingGroupName"]] = {
                "desired": g["DesiredCapacity"], "min": g["MinSize"], "max": g["MaxSize"],
                "version": g.get("LaunchTemplate", {}).get("Version"),
                "suspended": sorted(s["ProcessName"] for s in g["SuspendedProcesses"]),
                "tags": {t["Key"]: t["Value"] for t in g["Tags"]},
                "instances": [{"id": i["InstanceId"], "zone": i["AvailabilityZone"],
                               "state": i["LifecycleState"],
                               "protected": i.get("ProtectedFromScaleIn", False)}
                              for i in g["Instances"]],
            }
    json.dump(out, sys.stdout, sort_keys=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("--endpoint", required=True)
    c.add_argument("--cluster", required=True)
    c.add_argument("--topology", required=True)
    c.add_argument("--target-version", required=True)
    c.add_argument("--lb-pool", action="append", default=[])
    c.add_argument("--suspended", action="append", default=[])
    c.add_argument("--multi-zone-pool", action="append", default=[])
    c.add_argument("--held", action="append", default=[])
    d = sub.add_parser("dump")
    d.add_argument("--endpoint", required=True)
    a = ap.parse_args()
    {"create": create, "dump": dump}[a.cmd](a)


if __name__ == "__main__":
    main()
