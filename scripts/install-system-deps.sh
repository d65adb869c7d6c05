#!/usr/bin/env bash
# Debian packages some features and tests need. Idempotent: installs only what is missing.
# Called by `make system-deps` (and so by `make test` / CI). Needs root or sudo; without either it
# warns and exits 0 (the tests that need a package then fail with a message naming it).
set -euo pipefail

PACKAGES=(
  # DICOMweb datastore tests: a real PACS started on loopback by the tests
  orthanc
  orthanc-dicomweb
  # offscreen rendering (VTK)
  libgl1
  libegl1
  libegl-mesa0      # the EGL vendor library VTK's headless (EGL) render window loads (recon PNG)
  libgl1-mesa-dri   # Mesa's software rasteriser behind it
  libxrender1
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-system-deps: all present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-system-deps: WARNING: not root and no sudo; missing: ${missing[*]}" >&2
    exit 0
  fi
fi
echo "install-system-deps: installing ${missing[*]}"
$SUDO apt-get update -q
# policy-rc.d may refuse to start the packaged Orthanc service: the tests start their own.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
