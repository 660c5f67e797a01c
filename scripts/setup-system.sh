#!/usr/bin/env bash
# Install the Debian packages devicelab needs (idempotent: skips what is present).
#   sudo bash scripts/setup-system.sh [--nonfree]
# --nonfree also installs the mbrola voices (Debian contrib/non-free; non-commercial use only).
# build-essential and python3-dev compile the sdists of the Python dependencies (sed_eval, sed_scores_eval,
# soxbindings, and ttspico, which builds SVOX Pico from C).
set -euo pipefail

packages=(espeak-ng flite sox libsox-fmt-all libsox-dev libsndfile1 build-essential python3-dev
          libmagic1 fonts-dejavu-core fonts-liberation fonts-freefont-ttf time)
if [[ "${1:-}" == "--nonfree" ]]; then
  packages+=(mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup-system: all system packages present"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=sudo; else
    echo "setup-system: missing Debian packages: ${missing[*]}" >&2
    echo "setup-system: run as root: sudo bash scripts/setup-system.sh" >&2
    exit 1
  fi
else SUDO=""; fi
echo "setup-system: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
