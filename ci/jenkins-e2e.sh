#!/usr/bin/env bash
# Jenkins PR stage: the whole gate (cluster up → ready → suites in parallel → cluster down) with
# the profile in E2E_GATE_PROFILE (default `pr`: the dev cluster in $KUBECONFIG). Posts one
# GitHub status per suite plus e2e-gate/gate (repository and commit from Jenkins' GIT_URL,
# CHANGE_ID, GIT_COMMIT; BUILD_URL links them). Exit code is e2e-gate's (README "Exit codes").
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${E2E_GATE_BIN:-target/release/e2e-gate}
exec "$bin" gate --profile "${E2E_GATE_PROFILE:-pr}" --artifacts "${ARTIFACTS:-artifacts}" --format json
