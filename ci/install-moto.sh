#!/usr/bin/env bash
# Installs moto's AWS server (PyPI moto[server], pinned) into target/moto-venv for the tests
# of `--cloud aws` (tests/upgrade_aws.rs); boto3, which the rig script ci/aws-rig/cluster.py
# uses, comes with it. Prints the server's path. Without it those tests skip (fail with CI).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/moto-venv
if [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'moto[server]==5.2.6'
fi
echo "$PWD/$venv/bin/moto_server"
