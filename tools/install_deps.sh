#!/usr/bin/env bash
# Installs the Debian packages stepwise builds against, only those missing (needs root or sudo; apt-get).
# Used by tools/test.sh and tools/demo.sh so a fresh machine needs nothing by hand.
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config libyaml-cpp-dev libsentencepiece-dev nlohmann-json3-dev libcpp-httplib-dev
      libcli11-dev libopenblas-dev libopenmpi-dev openmpi-bin libgtest-dev libgmock-dev libbenchmark-dev libomp-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
