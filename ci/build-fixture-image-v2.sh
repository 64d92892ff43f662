#!/usr/bin/env bash
# Build the e2e-gate ginkgo v2 fixture image (fixtures/conformance-image-v2).
#
#   ci/build-fixture-image-v2.sh [TAG]   (or FIXTURE_V2_IMAGE=TAG; default e2e-gate-fixture-v2:latest)
#
# Debian 12 only packages ginkgo v1, so the Go toolchain and the ginkgo v2
# sources come from Debian 13 (trixie): fetched with `apt-get download`
# through a private apt configuration (nothing is installed on the machine,
# the system's apt state is not touched), unpacked with `dpkg -x` into
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/e2e-gate/ginkgo-v2-toolchain/root-<key>
#
# where <key> hashes the package list (change it and the next run refetches).
# A run with a complete tree does not touch the network. Then, in GOPATH mode
# against that tree, it compiles three static binaries (the suite via
# `go test -c` -> e2e.test, the ginkgo v2 CLI, the /run_e2e entrypoint) and
# `docker build`s a FROM scratch image (no pull).
# Quiet on success; prints the failing step's output and exits non-zero on error.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
src="$repo/fixtures/conformance-image-v2"
tag="${1:-${FIXTURE_V2_IMAGE:-e2e-gate-fixture-v2:latest}}"

suite=trixie
mirror="${FIXTURE_V2_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
go_ver=1.24
# Found by building (`go list -deps` of the suite and of the CLI); the -dev
# packages' own Depends are much wider (gomega, x/net, sprig's deps...) but
# GOPATH mode only needs the import graph actually compiled.
pkgs=(
    "golang-$go_ver-go"                     # go command, compiler, linker
    "golang-$go_ver-src"                    # GOROOT/src (the std library sources)
    golang-github-onsi-ginkgo-v2-dev        # ginkgo 2.22.x: the DSL, reporters and the CLI
    golang-github-go-logr-logr-dev          # ginkgo/v2/internal (GinkgoLogr) imports logr
    golang-golang-x-sys-dev                 # ginkgo/v2/internal (output interceptor) imports x/sys/unix
    golang-github-go-task-slim-sprig-dev    # CLI: `ginkgo generate` templates
    golang-github-google-pprof-dev          # CLI: merging profiles (github.com/google/pprof/profile)
    golang-golang-x-tools-dev               # CLI: `ginkgo outline` (go/ast/inspector) and cover merging
)
# Deliberately absent: golang-gomega-dev (the fixture uses plain Fail; gomega
# would add go-cmp, yaml.v3, x/net and x/text).

cache="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/e2e-gate/ginkgo-v2-toolchain"
key="$(printf '%s\n' "$suite" "$mirror" "$(dpkg --print-architecture)" "${pkgs[@]}" | sha256sum | cut -c1-16)"
root="$cache/root-$key"

work="$(mktemp -d "${TMPDIR:-/tmp}/e2e-gate-fixture-v2.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log="$work/step.log"

step() {
    local what="$1"; shift
    if ! "$@" >"$log" 2>&1; then
        echo "build-fixture-image-v2: FAILED: $what" >&2
        echo "build-fixture-image-v2: command: $*" >&2
        cat "$log" >&2
        exit 1
    fi
}

fail() { echo "build-fixture-image-v2: $*" >&2; exit 1; }

# --- toolchain: fetch + unpack trixie packages (once per package list) -------
fetch_toolchain() {
    local apt="$cache/apt"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/empty.d" "$work/debs"
    # Signed-by the system keyring: Debian 12's debian-archive-keyring
    # (2023.3+deb12u2 here) already ships the trixie archive and release
    # keys (its "13/trixie" uids), so trixie's InRelease verifies with it and
    # apt-get download checks every .deb against the signed Packages index.
    # Without them, `apt-get update` fails (NO_PUBKEY) rather than trusting
    # anything.
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$apt/sources.list"
    # APT_CONFIG is read before the system's configuration; pointing
    # Dir::Etc::parts/main/preferences at empty places here makes apt skip
    # /etc/apt/apt.conf{,.d} and pinning entirely: no appstream/packagekit
    # update hooks touching system caches, no DEP-11/Contents downloads.
    # (Proxies therefore come only from http_proxy/https_proxy.)
    # Sandbox user root: the cache usually lives under a 0700 $HOME that the
    # _apt user cannot enter (apt would fall back to root anyway, with a warning).
    cat >"$apt/apt.conf" <<EOF
Dir::Etc::parts "$apt/empty.d";
Dir::Etc::main "/dev/null";
Dir::Etc::preferences "/dev/null";
Dir::Etc::preferencesparts "$apt/empty.d";
Dir::State::status "/dev/null";
APT::Architectures { "$(dpkg --print-architecture)"; };
Acquire::Languages "none";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT::Sandbox::User "root";
EOF
    local -a aptopts=(
        -o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=-
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
    )
    export APT_CONFIG="$apt/apt.conf"
    step "apt-get update ($suite, private config)" apt-get -q "${aptopts[@]}" update
    (cd "$work/debs" && step "apt-get download ${pkgs[*]}" apt-get -q "${aptopts[@]}" download "${pkgs[@]}")
    unset APT_CONFIG

    # Unpack next to the final place and rename: a half-unpacked tree is
    # never mistaken for a complete one.
    local tmp="$cache/.root-$key.$$"
    rm -rf "$tmp"; mkdir -p "$tmp"
    local deb
    for deb in "$work"/debs/*.deb; do
        step "dpkg -x $(basename "$deb")" dpkg -x "$deb" "$tmp"
    done
    (cd "$work/debs" && printf '%s\n' *.deb) >"$tmp/.packages"
    rm -rf "$root"
    mv "$tmp" "$root"
    # The apt state (55 MB of trixie indexes) is only needed to fetch, and
    # trees of older package lists are dead weight.
    rm -rf "$apt"
    find "$cache" -maxdepth 1 -name 'root-*' ! -name "root-$key" -exec rm -rf {} +
}

[ -f "$root/.packages" ] || fetch_toolchain

goroot="$root/usr/lib/go-$go_ver"
gocode="$root/usr/share/gocode"
ginkgo_version="$(sed -n 's/^const VERSION = "\(.*\)"$/\1/p' "$gocode/src/github.com/onsi/ginkgo/v2/types/version.go")"
case "$ginkgo_version" in
    2.22.*) ;;
    *) fail "expected ginkgo 2.22.x in $root, found '${ginkgo_version}'" ;;
esac

# --- build ------------------------------------------------------------------
gopath="$work/gopath"
mkdir -p "$gopath/src/e2egate.fixture" "$work/ctx/bin" "$work/ctx/tmp" "$cache/go-config"
cp -r "$src/e2e" "$gopath/src/e2egate.fixture/e2e"
cp -r "$src/runner" "$gopath/src/e2egate.fixture/runner"
cp "$src/Dockerfile" "$work/ctx/Dockerfile"

# GOPATH mode against the unpacked tree only; nothing from the user's Go
# setup (GOENV=off), no toolchain or module downloads. Go >= 1.23 writes
# telemetry counters under $XDG_CONFIG_HOME/go: keep them inside the cache
# (set for go only, so docker still finds its usual configuration).
unset GOOS GOARCH GOBIN GOEXPERIMENT
export GOROOT="$goroot" GOPATH="$gopath:$gocode" GO111MODULE=off CGO_ENABLED=0 \
    GOFLAGS='' GOENV=off GOTOOLCHAIN=local GOPROXY=off GOCACHE="$cache/gocache"
go=(env "XDG_CONFIG_HOME=$cache/go-config" "$goroot/bin/go")
ldflags='-s -w'

(
    cd "$gopath/src/e2egate.fixture/e2e"
    step "go test -c (e2e.test)" "${go[@]}" test -c -trimpath -ldflags="$ldflags" -o "$work/ctx/bin/e2e.test" .
)
step "go build ginkgo v2 CLI" "${go[@]}" build -trimpath -ldflags="$ldflags" -o "$work/ctx/bin/ginkgo" github.com/onsi/ginkgo/v2/ginkgo
step "go build run_e2e" "${go[@]}" build -trimpath -ldflags="$ldflags" -o "$work/ctx/bin/run_e2e" e2egate.fixture/runner

for b in e2e.test ginkgo run_e2e; do
    if command -v file >/dev/null 2>&1 && file "$work/ctx/bin/$b" | grep -q 'dynamically linked'; then
        fail "$b is dynamically linked"
    fi
done

step "docker build $tag" docker build -q --build-arg "GINKGO_VERSION=$ginkgo_version" -t "$tag" "$work/ctx"
