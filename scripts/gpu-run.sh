#!/usr/bin/env bash
# Runs the bundled CLI on a lent GPU machine from the repository root: `bash .gpu/run.sh bench ...`
# (built by scripts/gpu-bundle.sh). Unpacks Node, Dawn and, where missing, the Vulkan loader, then points
# Dawn at the NVIDIA driver's ICD when it is there. Works on any x86-64 Linux with a Vulkan driver.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin=/tmp/lora-studio-gpu
mkdir -p "$bin"
if [ ! -x "$bin/node" ]; then xz -dc "$here/node.xz" > "$bin/node"; chmod +x "$bin/node"; fi
dawn="$here/node_modules/webgpu/dist/linux-x64/dawn.node"
if [ ! -f "$dawn" ]; then xz -dc "$dawn.xz" > "$dawn"; fi
if ! ldconfig -p | grep -q libvulkan.so.1; then
  for f in "$here"/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; fi
exec "$bin/node" "$here/cli.mjs" "$@"
