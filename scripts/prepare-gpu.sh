#!/usr/bin/env bash
# npm run check:gpu:prepare — fills .gpu/ (ignored by git) with what `npm run check:gpu` needs on a
# GPU machine that has only the working tree, Python with a CUDA PyTorch, a C++ toolchain and no
# network (see docs/gpu.md):
#   .gpu/node.tar.xz          this machine's node binary (bin/node), its headers (include/node,
#                             without OpenSSL's, for node-gyp --nodedir) and npm with its node-gyp
#                             (lib/node_modules/npm): unpacked there only when node is missing
#   .gpu/dist/                the compiled TypeScript (the GPU machine has no typescript)
#   .gpu/node_modules/        the only package the check needs at run time: node-addon-api (headers)
#   .gpu/source.sha256        hash of the sources dist/ was built from (check:gpu refuses a stale one)
#   .gpu/MANIFEST.txt         what is there, with sizes
# Overrides, for tests and other machines: CELEBA_GAN_GPU_DIR (default .gpu), NODE_BIN (the binary
# to pack; default the node running here), NODE_INCLUDE, NPM_DIR, CELEBA_GAN_GPU_DIST_FROM (copy
# this compiled tree instead of running tsc).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  '') ;;
  *) echo "check:gpu:prepare: unknown argument $1 (it takes none; see --help)" >&2; exit 2 ;;
esac

GPU_DIR=${CELEBA_GAN_GPU_DIR:-$ROOT/.gpu}
LIMIT_MIB=64
node_bin=${NODE_BIN:-$(command -v node || true)}
[ -n "$node_bin" ] && [ -x "$node_bin" ] || { echo "check:gpu:prepare: no node binary (set NODE_BIN)" >&2; exit 1; }
node_bin=$(readlink -f "$node_bin")
prefix=$(dirname "$(dirname "$node_bin")")
node_include=${NODE_INCLUDE:-}
if [ -z "$node_include" ]; then
  for d in "$prefix/include/node" /usr/include/node /usr/local/include/node; do
    if [ -f "$d/node_api.h" ]; then node_include=$d; break; fi
  done
fi
[ -n "$node_include" ] && [ -f "$node_include/node_api.h" ] || { echo "check:gpu:prepare: Node's headers (node_api.h) not found; set NODE_INCLUDE" >&2; exit 1; }
npm_dir=${NPM_DIR:-}
if [ -z "$npm_dir" ]; then
  for d in "$prefix/lib/node_modules/npm" /usr/lib/node_modules/npm /usr/local/lib/node_modules/npm; do
    if [ -f "$d/node_modules/node-gyp/bin/node-gyp.js" ]; then npm_dir=$d; break; fi
  done
fi
[ -n "$npm_dir" ] && [ -f "$npm_dir/node_modules/node-gyp/bin/node-gyp.js" ] || { echo "check:gpu:prepare: npm with node-gyp not found; set NPM_DIR" >&2; exit 1; }

rm -rf "$GPU_DIR"
mkdir -p "$GPU_DIR"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# 1. node, headers, npm (node-gyp) in the layout node-gyp expects under a prefix.
mkdir -p "$stage/node/bin" "$stage/node/include" "$stage/node/lib/node_modules"
cp "$node_bin" "$stage/node/bin/node"
cp -r "$node_include" "$stage/node/include/node"
rm -rf "$stage/node/include/node/openssl"  # 53 MB an N-API addon never includes
cp -r "$npm_dir" "$stage/node/lib/node_modules/npm"
echo "check:gpu:prepare: compressing node $("$node_bin" --version), headers and npm (xz -6; about a minute)"
tar -C "$stage/node" -cf - bin include lib | xz -6 -T0 > "$GPU_DIR/node.tar.xz"

# 2. the compiled TypeScript, and the hash of what it was compiled from.
if [ -n "${CELEBA_GAN_GPU_DIST_FROM:-}" ]; then
  cp -r "$CELEBA_GAN_GPU_DIST_FROM" "$GPU_DIR/dist"
else
  echo "check:gpu:prepare: compiling the TypeScript into $GPU_DIR/dist"
  node node_modules/typescript/bin/tsc -p . --outDir "$GPU_DIR/dist" --sourceMap false
fi
bash scripts/source-hash.sh > "$GPU_DIR/source.sha256"

# 3. node-addon-api (headers only are used: binding.gyp asks it for its include dir).
addon_api=$(node -p "require('path').dirname(require.resolve('node-addon-api/package.json'))")
mkdir -p "$GPU_DIR/node_modules"
cp -r "$addon_api" "$GPU_DIR/node_modules/node-addon-api"

total=$(du -sk "$GPU_DIR" | cut -f1)
{
  echo "# .gpu/ for npm run check:gpu, made $(date -u +%Y-%m-%dT%H:%M:%SZ) by scripts/prepare-gpu.sh"
  echo "node $("$node_bin" --version) from $node_bin; headers from $node_include; npm from $npm_dir"
  (cd "$GPU_DIR" && du -sk node.tar.xz dist node_modules source.sha256)
  echo "total ${total} KiB (limit ${LIMIT_MIB} MiB)"
} > "$GPU_DIR/MANIFEST.txt"
cat "$GPU_DIR/MANIFEST.txt"
if [ "$total" -gt $((LIMIT_MIB * 1024)) ]; then
  echo "check:gpu:prepare: $GPU_DIR is ${total} KiB, over the ${LIMIT_MIB} MiB that can travel to the GPU machine" >&2
  exit 1
fi
