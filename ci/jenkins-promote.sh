#!/usr/bin/env bash
# Jenkins nightly stage: promotes each channel hop whose required statuses are green and have
# soaked. A closed gate (exit 1) is a normal outcome: the hop waits for the next night.
# Repository: PROMOTE_REPO (owner/name). Contexts and soak per hop below.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${E2E_GATE_BIN:-target/release/e2e-gate}
repo=${PROMOTE_REPO:?set PROMOTE_REPO=owner/name}
audit=${ARTIFACTS:-artifacts}/promotions.jsonl
mkdir -p "$(dirname "$audit")"
worst=0
# Promote from the most stable end first, so a commit moves one hop per night.
for hop in "beta stable 24h" "alpha beta 12h" "dev alpha 2h"; do
    set -- $hop
    "$bin" promote --repo "$repo" --from "$1" --to "$2" --soak "$3" \
        --require e2e-gate/gate --require e2e-gate/conformance --require e2e-gate/statefulset \
        --audit-log "$audit"
    code=$?
    case $code in
        0|1) ;;                       # promoted / nothing to do, or gate closed: both expected
        *) echo "promote $1 -> $2: exit $code" >&2; worst=$code ;;
    esac
done
exit $worst
