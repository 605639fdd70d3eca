#!/usr/bin/env bash
# Fetches the headers and stub libraries (cuda.h, cublasLt.h, nvrtc.h, ...; stubs/libcuda.so, ...) of two CUDA
# versions from Debian's non-free nvidia-cuda-dev, without installing it (it pulls in ~3 GB): 11.8 (Debian 12) and
# 12.4 (Debian 13), one folder each, cuda-11.8/ and cuda-12.4/ under ROOT, and prints those folders.
# InteropHeaderTests compile our P/Invoke declarations against each, so a wrong signature, a symbol a header
# renames (cuMemAlloc -> cuMemAlloc_v2) or a wrong constant fails here rather than in a GPU lease.
#   usage: scripts/fetch-cuda-headers.sh [ROOT]   (default ~/.cache/nativereft; kept between runs; no root needed)
set -euo pipefail
root="${1:-${NATIVEREFT_CUDA_HEADERS:-${XDG_CACHE_HOME:-$HOME/.cache}/nativereft}}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# deb SUITE COMPONENT PACKAGE FILE: downloads the package's current version in that suite (read from the index, so
# a rebuilt package does not break the script; awk reads the whole index, so pipefail sees no broken pipe).
deb() {
  local path
  path="$(curl -fsSL --retry 3 "$mirror/dists/$1/$2/binary-amd64/Packages.xz" | xz -dc \
    | awk -v p="$3" '$1 == "Package:" { hit = ($2 == p) } hit && !found && $1 == "Filename:" { print $2; found = 1 }')"
  [[ -n $path ]] || { echo "error: no package $3 in $mirror $1/$2" >&2; return 1; }
  curl -fsSL --retry 3 -o "$4" "$mirror/$path"
}

# fetch VERSION SUITE
fetch() {
  local target="$root/cuda-$1" work
  if [[ -f $target/include/cuda.h && -f $target/stubs/libcuda.so ]]; then
    echo "$target"
    return
  fi
  work="$(mktemp -d)"
  echo "fetching CUDA $1's headers (nvidia-cuda-dev, Debian $2 non-free, about 900 MB)" >&2
  deb "$2" non-free nvidia-cuda-dev "$work/dev.deb"
  mkdir "$work/x"
  dpkg-deb --fsys-tarfile "$work/dev.deb" | tar -x -C "$work/x" --wildcards './usr/include/*' './usr/lib/x86_64-linux-gnu/stubs/*'
  rm "$work/dev.deb"
  # From 12.x, cuda_fp16.h includes libcu++'s <nv/target>, which Debian packages apart (libcu++-dev, main).
  if grep -q '<nv/target>' "$work/x/usr/include/cuda_fp16.h" && [[ ! -e $work/x/usr/include/nv/target ]]; then
    deb "$2" main libcu++-dev "$work/cu.deb"
    dpkg-deb -x "$work/cu.deb" "$work/cu"
    cp -r "$work/cu/usr/include/nv" "$work/x/usr/include/"
  fi
  mkdir -p "$root"
  rm -rf "$target.partial"
  mkdir "$target.partial"
  mv "$work/x/usr/include" "$target.partial/include"
  mv "$work/x/usr/lib/x86_64-linux-gnu/stubs" "$target.partial/stubs"
  rm -rf "$target" "$work"
  mv "$target.partial" "$target"
  echo "$target"
}

fetch 11.8 bookworm
fetch 12.4 trixie
