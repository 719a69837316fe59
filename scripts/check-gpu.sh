#!/usr/bin/env bash
# npm run check:gpu [-- options] — the CUDA checks, in one command, on a machine with an NVIDIA GPU
# and a Python PyTorch built with CUDA (docs/gpu.md). Prepare once where node and
# node_modules exist: npm run check:gpu:prepare (fills .gpu/).
#
#   1. node: the one on PATH, else unpacked from .gpu/node.tar.xz
#   2. the libtorch addon, built against the CUDA libtorch of python3's PyTorch
#      (LIBTORCH_USE_PYTORCH=1 node native/build.mjs --force, what npm run build:native runs)
#   3. the torch engine's CUDA tests (test/engines/torch/cuda.test.ts), mandatory:
#      CELEBA_GAN_REQUIRE_CUDA=1
#   4. bench:train with --device cuda, then with --device cuda --amp: the torch engine against
#      PyTorch eager on the same GPU
#
# Everything lands in one folder: $OUT when set, else --out DIR, else gpu-check/<UTC time>/:
#   summary.md  status.json  env.txt  nvidia-smi.txt  node.log  build.log  torch-system.json
#   tests.log  tests.tap  bench-cuda.log  bench-cuda.json  bench-cuda-amp.log  bench-cuda-amp.json
# Exit 0 when every step passed, 1 when one failed, 2 for a bad option.
#
# Options: --out DIR  --steps N (timed steps per contender, default 20)  --warmup N (default 3)
#          --widths LIST (default 1,0.25)  --skip-build  --skip-tests  --skip-bench  -h|--help
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GPU_DIR=${CELEBA_GAN_GPU_DIR:-$ROOT/.gpu}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
bad() { echo "check:gpu: $1 (see --help)" >&2; exit 2; }

out=${OUT:-}
steps=20 warmup=3 widths=1,0.25 skip_build=0 skip_tests=0 skip_bench=0
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --out) [ $# -ge 2 ] || bad "--out needs a folder"; [ -n "${OUT:-}" ] || out=$2; shift 2 ;;
    --steps) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || bad "--steps needs an integer >= 1, got '${2:-}'"; steps=$2; shift 2 ;;
    --warmup) [[ ${2:-} =~ ^[0-9]+$ ]] || bad "--warmup needs an integer >= 0, got '${2:-}'"; warmup=$2; shift 2 ;;
    --widths) [[ ${2:-} =~ ^[0-9.]+(,[0-9.]+)*$ ]] || bad "--widths needs a list like 1,0.25, got '${2:-}'"; widths=$2; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --skip-tests) skip_tests=1; shift ;;
    --skip-bench) skip_bench=1; shift ;;
    *) bad "unknown option $1" ;;
  esac
done
[ -n "$out" ] || out="$ROOT/gpu-check/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out" || { echo "check:gpu: cannot create the output folder $out" >&2; exit 1; }
out=$(cd "$out" && pwd)
# One Python for everything: the build's libtorch, the environment report and PyTorch eager.
PYTHON=${PYTHON:-$(command -v python3 || echo python3)}
export PYTHON

results=()  # "name|status|seconds|detail"
failed=0
record() { results+=("$1|$2|$3|$4"); [ "$2" = FAILED ] && failed=1; echo "check:gpu: $1: $2${4:+ ($4)}"; }
# step NAME LOG COMMAND...: runs the command, output to LOG, records the outcome.
step() {
  local name=$1 log=$2 start rc
  shift 2
  start=$(date +%s)
  echo "check:gpu: $name ..."
  "$@" > "$out/$log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then record "$name" ok $(($(date +%s) - start)) "$log"; else record "$name" FAILED $(($(date +%s) - start)) "exit $rc, see $log"; fi
  return $rc
}

# --- the machine ----------------------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -a)"
  echo "cpus: $(nproc)"
  echo "python: $PYTHON"
  "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "devices", torch.cuda.device_count()); print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")' 2>&1
  echo "git: $(git rev-parse HEAD 2>/dev/null || echo 'not a git checkout') $(git status --porcelain 2>/dev/null | wc -l) changed files"
} > "$out/env.txt"
if command -v nvidia-smi > /dev/null; then nvidia-smi > "$out/nvidia-smi.txt" 2>&1; else echo "nvidia-smi not found" > "$out/nvidia-smi.txt"; fi

# --- 1. node --------------------------------------------------------------------------------
find_node() {
  if [ "${CELEBA_GAN_GPU_NODE:-}" != unpack ] && command -v node > /dev/null; then
    echo "node $(node --version) from $(command -v node)"
    return 0
  fi
  if [ ! -f "$GPU_DIR/node.tar.xz" ]; then
    echo "node is not installed and $GPU_DIR/node.tar.xz is missing: run npm run check:gpu:prepare where node is installed, and bring .gpu/ along"
    return 1
  fi
  local dir=${CELEBA_GAN_GPU_NODE_DIR:-${TMPDIR:-/tmp}/celeba-gan-node}
  rm -rf "$dir" && mkdir -p "$dir" && tar -C "$dir" -xJf "$GPU_DIR/node.tar.xz" || return 1
  export PATH="$dir/bin:$PATH"
  echo "node $(node --version) unpacked from $GPU_DIR/node.tar.xz into $dir"
}
# (step runs the function in this shell, so the PATH it exports stays.)
if step node node.log find_node; then node_ok=1; else node_ok=0; fi

# A node found on PATH may lack npm's node-gyp or Node's headers (the build downloads neither):
# take them from .gpu/node.tar.xz when it is there.
build_tools() {
  local prefix dir
  prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  dir=${CELEBA_GAN_GPU_NODE_DIR:-${TMPDIR:-/tmp}/celeba-gan-node}
  if [ -f "$prefix/include/node/node_api.h" ] && [ -f "$prefix/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js" ]; then
    echo "node-gyp and headers beside $prefix/bin/node"
    return 0
  fi
  [ -f "$GPU_DIR/node.tar.xz" ] || { echo "no node-gyp or headers beside $prefix/bin/node and no $GPU_DIR/node.tar.xz; the build may fail"; return 0; }
  if [ ! -f "$dir/include/node/node_api.h" ]; then rm -rf "$dir" && mkdir -p "$dir" && tar -C "$dir" -xJf "$GPU_DIR/node.tar.xz" || return 1; fi
  if [ ! -f "$prefix/include/node/node_api.h" ]; then export npm_config_nodedir=$dir; echo "Node headers from $dir/include/node"; fi
  if [ ! -f "$prefix/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js" ]; then
    export npm_config_node_gyp=$dir/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
    echo "node-gyp from $npm_config_node_gyp"
  fi
}
if [ $node_ok = 1 ] && [ $skip_build = 0 ]; then step build-tools build-tools.log build_tools; fi

# The compiled JavaScript: .gpu/dist (made by prepare, for these sources) or dist/ (npm run build).
js=""
find_js() {
  local want have
  want=$(bash scripts/source-hash.sh)
  if [ -f "$GPU_DIR/dist/test/engines/torch/cuda.test.js" ]; then
    have=$(cat "$GPU_DIR/source.sha256" 2>/dev/null || echo none)
    if [ "$have" != "$want" ]; then
      echo "$GPU_DIR/dist was compiled from other sources ($have, now $want): run npm run check:gpu:prepare again"
      return 1
    fi
    echo "$GPU_DIR/dist"
  elif [ -f "$ROOT/dist/test/engines/torch/cuda.test.js" ]; then
    echo "$ROOT/dist"
  else
    echo "no compiled JavaScript: run npm run check:gpu:prepare (or npm run build)"
    return 1
  fi
}
if step javascript javascript.log find_js; then js=$(tail -n 1 "$out/javascript.log"); fi

# node-addon-api's headers for the build: node_modules/ if present, else .gpu/node_modules.
if [ $node_ok = 1 ] && ! (cd native && node -e "require.resolve('node-addon-api')" 2> /dev/null); then
  export NODE_PATH="$GPU_DIR/node_modules${NODE_PATH:+:$NODE_PATH}"
fi

# --- 2. the addon, against the CUDA libtorch ------------------------------------------------
system_info() {
  node --input-type=module -e "
    const { loadTorchAddon } = await import('$js/src/bindings/torch.js');
    const s = loadTorchAddon().systemInfo();
    console.log(JSON.stringify(s, null, 2));
    if (!s.cuda) { console.error('this libtorch has no CUDA or sees no GPU'); process.exit(1); }
  "
}
if [ $node_ok = 1 ] && [ -n "$js" ]; then
  if [ $skip_build = 1 ]; then
    record build skipped 0 "--skip-build"
  else
    step build build.log env LIBTORCH_USE_PYTORCH=1 node native/build.mjs --force
  fi
  step torch-system torch-system.json system_info
else
  record build FAILED 0 "no node or no compiled JavaScript"
fi

# --- 3. the CUDA tests ----------------------------------------------------------------------
if [ $skip_tests = 1 ]; then
  record tests skipped 0 "--skip-tests"
elif [ $node_ok = 1 ] && [ -n "$js" ]; then
  step tests tests.log env CELEBA_GAN_REQUIRE_CUDA=1 CELEBA_GAN_REQUIRE_TORCH=1 \
    node --test --test-reporter=spec --test-reporter-destination=stdout --test-reporter=tap --test-reporter-destination="$out/tests.tap" \
    "$js/test/engines/torch/cuda.test.js"
fi

# --- 4. bench:train on the GPU, float32 and --amp -------------------------------------------
bench() {
  local json=$1
  shift
  node "$js/bench/train.js" --engine torch --device cuda --widths "$widths" --steps "$steps" --warmup "$warmup" --json "$out/$json" "$@" || return 1
  # Every contender must have run (a skipped one leaves imagesPerSecond null).
  node -e "
    const r = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')).results;
    const bad = r.filter((x) => x.imagesPerSecond === null);
    if (bad.length) { console.error('did not run: ' + bad.map((x) => x.name + ' at width ' + x.width + ': ' + x.note).join('; ')); process.exit(1); }
  " "$out/$json"
}
if [ $skip_bench = 1 ]; then
  record bench skipped 0 "--skip-bench"
elif [ $node_ok = 1 ] && [ -n "$js" ]; then
  step bench-cuda bench-cuda.log bench bench-cuda.json
  step bench-cuda-amp bench-cuda-amp.log bench bench-cuda-amp.json --amp
fi

# --- summary --------------------------------------------------------------------------------
{
  echo "# npm run check:gpu — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  sed 's/^/    /' "$out/env.txt"
  echo
  echo "| step | result | seconds | detail |"
  echo "|---|---|---|---|"
  for r in "${results[@]}"; do echo "| ${r//|/ | } |"; done
  for b in bench-cuda bench-cuda-amp; do
    if [ -f "$out/$b.log" ]; then
      echo
      echo "## $b"
      echo
      sed 's/^/    /' "$out/$b.log"
    fi
  done
} > "$out/summary.md"
{
  echo "{\"ok\": $([ $failed = 0 ] && echo true || echo false), \"out\": \"$out\", \"steps\": ["
  sep=""
  for r in "${results[@]}"; do
    IFS='|' read -r name status secs detail <<< "$r"
    printf '%s{"name": "%s", "status": "%s", "seconds": %s, "detail": "%s"}' "$sep" "$name" "$status" "$secs" "${detail//\"/\'}"
    sep=$',\n'
  done
  echo "]}"
} > "$out/status.json"
echo "check:gpu: $([ $failed = 0 ] && echo 'all steps passed' || echo 'FAILED') — $out/summary.md"
exit $failed
