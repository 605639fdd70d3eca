#!/usr/bin/env bash
# Fetches CUDA 11.8's headers and stub libraries (cuda.h, cublasLt.h, nvrtc.h, ...; stubs/libcuda.so, ...) from
# Debian non-free's nvidia-cuda-dev, without installing it (the package pulls in ~3 GB), into one folder, and prints
# that folder. InteropHeaderTests compile our P/Invoke declarations against them (NATIVEREFT_CUDA_SDK=<folder>), so
# a wrong signature or constant fails here rather than in a GPU lease.
#   usage: scripts/fetch-cuda-headers.sh [folder]   (default ~/.cache/nativereft/cuda-11.8; kept between runs)
set -euo pipefail
target="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/nativereft/cuda-11.8}"
if [[ -f $target/include/cuda.h && -f $target/stubs/libcuda.so ]]; then
  echo "$target"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The package is non-free: `apt-get download` needs that component in the sources and its lists fetched.
if ! (cd "$work" && apt-get download -qq nvidia-cuda-dev >&2 2>/dev/null); then
  sources=/etc/apt/sources.list.d/debian.sources
  if [[ $(id -u) -ne 0 ]]; then
    echo "cannot download nvidia-cuda-dev: add 'non-free' to the Components of $sources and run 'apt-get update' (as root)" >&2
    exit 1
  fi
  [[ -f $sources ]] && sed -E -i '/^Components:/{/[[:space:]]non-free([[:space:]]|$)/!s/$/ non-free/}' "$sources"
  apt-get update -qq >&2
  (cd "$work" && apt-get download -qq nvidia-cuda-dev >&2)
fi

# 774 MB compressed; only the headers (14 MB) and the stubs are kept.
mkdir -p "$work/x"
dpkg-deb --fsys-tarfile "$work"/nvidia-cuda-dev_*.deb \
  | tar -x -C "$work/x" --wildcards './usr/include/*' './usr/lib/x86_64-linux-gnu/stubs/*'
mkdir -p "$(dirname "$target")"
rm -rf "$target.partial"
mkdir "$target.partial"
mv "$work/x/usr/include" "$target.partial/include"
mv "$work/x/usr/lib/x86_64-linux-gnu/stubs" "$target.partial/stubs"
rm -rf "$target"
mv "$target.partial" "$target"
echo "$target"
