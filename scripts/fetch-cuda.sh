#!/usr/bin/env bash
# Fetches two CUDA versions from Debian's non-free archive without installing anything (nvidia-cuda-dev alone pulls
# in ~3 GB): 11.8 (Debian 12) and 12.4 (Debian 13), one folder each, cuda-11.8/ and cuda-12.4/ under ROOT, and
# prints those folders. Each gets the headers and stub libraries (include/cuda.h, cublasLt.h, nvrtc.h, ...;
# stubs/libcuda.so, ...); 12.4 also gets NVRTC (lib/libnvrtc.so.12 and its builtins), which loads on Debian 12.
#  - InteropHeaderTests compile our P/Invoke declarations against each version's headers, so a wrong signature, a
#    symbol a header renames (cuMemAlloc -> cuMemAlloc_v2) or a wrong constant fails here, not in a GPU lease;
#  - .ci/run compiles every kernel with NVRTC 12.4 as well as with the system's 11.8 (the GPU image has 13).
#   usage: scripts/fetch-cuda.sh [ROOT]   (default ~/.cache/nativereft; kept between runs; no root needed)
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

# fetch VERSION SUITE [NVRTC_PACKAGE...]
fetch() {
  local version=$1 suite=$2 target="$root/cuda-$1" work package
  shift 2
  if [[ -f $target/include/cuda.h && -f $target/stubs/libcuda.so ]] && { (($# == 0)) || [[ -d $target/lib ]]; }; then
    echo "$target"
    return
  fi
  work="$(mktemp -d)"
  echo "fetching CUDA $version's headers (nvidia-cuda-dev, Debian $suite non-free, about 900 MB)" >&2
  deb "$suite" non-free nvidia-cuda-dev "$work/dev.deb"
  mkdir "$work/x"
  dpkg-deb --fsys-tarfile "$work/dev.deb" | tar -x -C "$work/x" --wildcards './usr/include/*' './usr/lib/x86_64-linux-gnu/stubs/*'
  rm "$work/dev.deb"
  # From 12.x, cuda_fp16.h includes libcu++'s <nv/target>, which Debian packages apart (libcu++-dev, main).
  if grep -q '<nv/target>' "$work/x/usr/include/cuda_fp16.h" && [[ ! -e $work/x/usr/include/nv/target ]]; then
    deb "$suite" main libcu++-dev "$work/cu.deb"
    dpkg-deb -x "$work/cu.deb" "$work/cu"
    cp -r "$work/cu/usr/include/nv" "$work/x/usr/include/"
  fi
  mkdir -p "$root"
  rm -rf "$target.partial"
  mkdir "$target.partial"
  mv "$work/x/usr/include" "$target.partial/include"
  mv "$work/x/usr/lib/x86_64-linux-gnu/stubs" "$target.partial/stubs"
  for package in "$@"; do
    deb "$suite" non-free "$package" "$work/$package.deb"
    dpkg-deb -x "$work/$package.deb" "$work/lib"
  done
  if (($#)); then
    mv "$work/lib/usr/lib/x86_64-linux-gnu" "$target.partial/lib"
  fi
  rm -rf "$target" "$work"
  mv "$target.partial" "$target"
  echo "$target"
}

fetch 11.8 bookworm
fetch 12.4 trixie libnvrtc12 libnvrtc-builtins12.4
