#!/usr/bin/env bash
# Installs the Debian packages whittle's tests need, only when missing:
#   - chromium: the browser for e2e tests, and its SwiftShader Vulkan ICD for Node's WebGPU (Dawn)
#   - mesa-vulkan-drivers from bookworm-backports: lavapipe (Mesa >= 25), a second, faster CPU Vulkan
#     driver with shader-f16. Mesa 22.3 from bookworm main is refused by Dawn.
# Needs root (apt-get). Without root and with the packages missing, it says what to install and exits 1.
# Set WHITTLE_NO_APT=1 to forbid installing (then only checks).
set -euo pipefail

need_chromium=0; need_lvp=0
[ -x /usr/bin/chromium ] && [ -f /usr/lib/chromium/vk_swiftshader_icd.json ] || need_chromium=1
[ -f /usr/share/vulkan/icd.d/lvp_icd.json ] || need_lvp=1
if [ $need_chromium = 0 ] && [ $need_lvp = 0 ]; then exit 0; fi

if [ "${WHITTLE_NO_APT:-}" = 1 ] || [ "$(id -u)" != 0 ]; then
  echo "whittle: missing system packages:" >&2
  [ $need_chromium = 1 ] && echo "  - chromium (apt-get install chromium)" >&2
  [ $need_lvp = 1 ] && echo "  - lavapipe (apt-get install -t bookworm-backports mesa-vulkan-drivers)" >&2
  echo "  run as root, or install them yourself" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if [ $need_lvp = 1 ] && [ ! -f /etc/apt/sources.list.d/whittle-backports.sources ]; then
  src=/etc/apt/sources.list.d/debian.sources
  uri=$(awk '/^URIs:/{print $2; exit}' "$src" 2>/dev/null || true)
  signed=$(awk '/^Signed-By:/{print $2; exit}' "$src" 2>/dev/null || true)
  cat > /etc/apt/sources.list.d/whittle-backports.sources <<SRC
Types: deb
URIs: ${uri:-http://deb.debian.org/debian}
Suites: bookworm-backports
Components: main
Signed-By: ${signed:-/usr/share/keyrings/debian-archive-keyring.gpg}
SRC
fi
echo "whittle: installing system packages (chromium=$need_chromium lavapipe=$need_lvp)..." >&2
apt-get update -qq >&2
[ $need_chromium = 1 ] && apt-get install -y -qq --no-install-recommends chromium >&2
[ $need_lvp = 1 ] && apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers >&2
exit 0
