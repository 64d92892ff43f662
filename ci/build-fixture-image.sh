#!/usr/bin/env bash
# Build the e2e-gate ginkgo v1 fixture image (fixtures/conformance-image).
#
#   ci/build-fixture-image.sh [TAG]      (or FIXTURE_IMAGE=TAG; default e2e-gate-fixture:latest)
#
# Compiles, in GOPATH mode against Debian's ginkgo 1.16.5 sources, three
# static binaries: the suite (go test -c -> e2e.test), the ginkgo v1 CLI and
# the /run_e2e entrypoint; then `docker build`s a FROM scratch image (no pull).
# Quiet on success; prints the failing step's output and exits non-zero on error.
# Set FIXTURE_SKIP_DEPS=1 to skip ci/install-fixture-deps.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
src="$repo/fixtures/conformance-image"
tag="${1:-${FIXTURE_IMAGE:-e2e-gate-fixture:latest}}"

work="$(mktemp -d "${TMPDIR:-/tmp}/e2e-gate-fixture.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log="$work/step.log"

step() {
    local what="$1"; shift
    if ! "$@" >"$log" 2>&1; then
        echo "build-fixture-image: FAILED: $what" >&2
        echo "build-fixture-image: command: $*" >&2
        cat "$log" >&2
        exit 1
    fi
}

if [ "${FIXTURE_SKIP_DEPS:-}" != "1" ]; then
    step "install-fixture-deps" "$here/install-fixture-deps.sh"
fi

gopath="$work/gopath"
mkdir -p "$gopath/src/e2egate.fixture" "$work/ctx/bin" "$work/ctx/tmp"
cp -r "$src/e2e" "$gopath/src/e2egate.fixture/e2e"
cp -r "$src/runner" "$gopath/src/e2egate.fixture/runner"
cp "$src/Dockerfile" "$work/ctx/Dockerfile"

export GOPATH="$gopath:/usr/share/gocode" GO111MODULE=off CGO_ENABLED=0 GOFLAGS=
export GOCACHE="${GOCACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/e2e-gate-fixture-go-build}"
ldflags='-s -w'

(
    cd "$gopath/src/e2egate.fixture/e2e"
    step "go test -c (e2e.test)" go test -c -trimpath -ldflags="$ldflags" -o "$work/ctx/bin/e2e.test" .
)
step "go build ginkgo v1 CLI" go build -trimpath -ldflags="$ldflags" -o "$work/ctx/bin/ginkgo" github.com/onsi/ginkgo/ginkgo
step "go build run_e2e" go build -trimpath -ldflags="$ldflags" -o "$work/ctx/bin/run_e2e" e2egate.fixture/runner

for b in e2e.test ginkgo run_e2e; do
    if command -v file >/dev/null 2>&1 && file "$work/ctx/bin/$b" | grep -q 'dynamically linked'; then
        echo "build-fixture-image: $b is dynamically linked" >&2; exit 1
    fi
done

step "docker build $tag" docker build -q -t "$tag" "$work/ctx"
