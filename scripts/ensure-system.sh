#!/usr/bin/env bash
# WebGPU without a GPU needs SwiftShader's Vulkan driver (shipped in Debian's chromium) and the Vulkan
# loader; the Firefox e2e test needs Debian's firefox-esr (without it, that test is skipped, except in CI).
# Installs them when missing and we are allowed to (root + apt-get); otherwise says what to do.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || [ -n "${CHROME_PATH:-}" ] || missing+=(chromium)
# grep reads all of ldconfig's output: with -q it would stop early, and pipefail would see ldconfig's SIGPIPE.
ldconfig -p 2>/dev/null | grep 'libvulkan.so.1' >/dev/null || missing+=(libvulkan1)
firefox=()
[ -x /usr/bin/firefox-esr ] || [ -n "${FIREFOX_PATH:-}" ] || firefox+=(firefox-esr)
[ ${#missing[@]} -eq 0 ] && [ ${#firefox[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing ${missing[*]} (Debian packages: Chromium for the e2e tests and its SwiftShader WebGPU driver)..." >&2
    apt-get install -y -qq "${missing[@]}" >&2
  fi
  if [ ${#firefox[@]} -gt 0 ]; then
    echo "Installing firefox-esr (Debian package: Firefox ESR for the Firefox e2e test)..." >&2
    apt-get install -y -qq firefox-esr >&2 ||
      echo "Could not install firefox-esr: the Firefox e2e test will be skipped (an error in CI)." >&2
  fi
elif [ ${#missing[@]} -gt 0 ]; then
  all=("${missing[@]}" "${firefox[@]}")
  echo "Missing system packages: ${all[*]}. Install them (Debian/Ubuntu: sudo apt-get install ${all[*]}) and re-run." >&2
  exit 1
else
  echo "firefox-esr is not installed: the Firefox e2e test will be skipped (Debian: sudo apt-get install firefox-esr)." >&2
fi
