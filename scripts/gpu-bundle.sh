#!/usr/bin/env bash
# Packs what the CLI needs on a lent GPU machine that has no Node.js and no node_modules (see
# docs/BENCHMARKS.md, "A real GPU"): .gpu/ holds the CLI bundled with the peers, Dawn's native module, this
# machine's node binary (xz) and the Vulkan loader's Debian packages; .gpu/run.sh runs the CLI there.
# Both folders are git-ignored: pass `.gpu` in the device tool's carry list.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.gpu
rm -rf "$out"
mkdir -p "$out/node_modules/webgpu/dist/linux-x64" "$out/debs"
node scripts/build-cli.mjs src/cli/main.ts "$out/cli.mjs" --self-contained
rm -f "$out/cli.mjs.map"
cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$out/node_modules/webgpu/"
xz -T2 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > "$out/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
xz -T2 -6 -c "$(command -v node)" > "$out/node.xz"
# The GPU machine may lack the Vulkan loader Dawn opens (the NVIDIA driver brings only its ICD).
(cd "$out/debs" && apt-get download libvulkan1 >/dev/null 2>&1) || true
ls "$out"/debs/libvulkan1_*.deb >/dev/null || { echo "gpu-bundle: apt-get download libvulkan1 failed" >&2; exit 1; }
cp scripts/gpu-run.sh "$out/run.sh"
du -sh "$out"
