#!/usr/bin/env bash
# Parses a Jenkinsfile with Groovy (Debian's `groovy`), so a syntax error fails the build.
#   ci/check-jenkinsfile.sh [FILE]     (default: Jenkinsfile)
set -euo pipefail
file=${1:-"$(dirname "$0")/../Jenkinsfile"}
if ! command -v groovy >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq groovy >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null && apt-get install -y -qq groovy >/dev/null; }
fi
# Debian's groovy looks for /usr/lib/jvm/default-java unless JAVA_HOME says otherwise.
if [ -z "${JAVA_HOME:-}" ] && [ ! -x /usr/lib/jvm/default-java/bin/java ]; then
    JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
    export JAVA_HOME
fi
# parse() compiles without running: syntax errors fail, unknown pipeline steps do not.
if ! out=$(groovy -e 'new GroovyShell().parse(new File(args[0]))' "$file" 2>&1); then
    echo "$out" | grep -v '^WARNING' >&2
    echo "$file: Groovy syntax error" >&2
    exit 1
fi
echo "$file: Groovy syntax OK"
