#!/usr/bin/env bash
# Idempotently install the Debian packages needed to build the ginkgo v1
# fixture image (fixtures/conformance-image): the Go toolchain and the
# ginkgo v1 sources (GOPATH layout under /usr/share/gocode).
# Run as root (or via sudo); non-interactive.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# golang-golang-x-tools-dev: the ginkgo v1 CLI (`ginkgo outline`) imports
# golang.org/x/tools/go/ast/inspector, which golang-github-onsi-ginkgo-dev
# does not pull in.
pkgs=(golang-go golang-github-onsi-ginkgo-dev golang-golang-x-tools-dev)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "install-fixture-deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# Sanity check: ginkgo v1 sources must be present where GOPATH mode expects them.
if [ ! -d /usr/share/gocode/src/github.com/onsi/ginkgo ]; then
    echo "install-fixture-deps: /usr/share/gocode/src/github.com/onsi/ginkgo missing after install" >&2
    exit 1
fi
