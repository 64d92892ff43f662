#!/usr/bin/env bash
# Jenkins PR stage: runs the suites in parallel containers against the cluster in $KUBECONFIG,
# posting one GitHub status per suite (repository and commit from Jenkins' GIT_URL, CHANGE_ID,
# GIT_COMMIT; BUILD_URL links the statuses). Exit code is e2e-gate's (README "Exit codes").
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${E2E_GATE_BIN:-target/release/e2e-gate}
suites=${E2E_GATE_SUITES:-"conformance statefulset"}
args=()
for s in $suites; do args+=(--suite "$s"); done
exec "$bin" run "${args[@]}" --jobs 2 --artifacts "${ARTIFACTS:-artifacts}" --format json
