#!/usr/bin/env bash
# One SHA-256 over the TypeScript sources and build config that dist/ is compiled from, so
# check:gpu can tell whether .gpu/dist is stale. Paths and contents, in a fixed order.
set -euo pipefail
cd "$(dirname "$0")/.."
find src test bench -name '*.ts' -type f | LC_ALL=C sort | { cat tsconfig.json; while read -r f; do echo "== $f"; cat "$f"; done; } | sha256sum | cut -d' ' -f1
