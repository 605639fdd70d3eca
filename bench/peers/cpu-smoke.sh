#!/usr/bin/env bash
# Runs the hook LoReFT peer and NativeReft through run.sh on the CPU (stories260K, seconds), with a real PyTorch and
# transformers, on a machine that has neither and cannot reach PyPI: Debian sid packages them (python3-torch,
# python3-transformers), so they are installed into a sid chroot (root, debootstrap; about 2 GB, 3 minutes the first
# time, kept in $NATIVEREFT_PEERS_ROOT, default /opt/nativereft-peers). PEFT is not packaged by Debian, so the LoRA
# peer is not run here.
#   bench/peers/cpu-smoke.sh [run.sh arguments...]     (default: --shape stories260K --steps 2 --batch 2 --seq 64)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
root="${NATIVEREFT_PEERS_ROOT:-/opt/nativereft-peers}"
[[ $(id -u) -eq 0 ]] || { echo "error: needs root (debootstrap, chroot, mount)" >&2; exit 2; }

if [[ ! -x $root/usr/bin/python3 ]] || ! chroot "$root" python3 -c 'import torch, transformers' 2>/dev/null; then
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
  echo "building a Debian sid chroot with PyTorch and transformers in $root (once)"
  [[ -x $root/usr/bin/apt-get ]] || debootstrap --variant=minbase sid "$root" http://deb.debian.org/debian >/dev/null
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # A mirror's sid Release file can read as expired against this machine's clock; the packages are still signed.
  apt=(apt-get -o Acquire::Check-Valid-Until=false -qq)
  chroot "$root" "${apt[@]}" update
  DEBIAN_FRONTEND=noninteractive chroot "$root" "${apt[@]}" install -y --no-install-recommends python3-torch python3-transformers >/dev/null
fi

# The repository and /tmp appear at the same paths inside, so run.sh's files and PYTHON's arguments resolve there.
python="$(mktemp)"
trap 'umount "$root$repo" "$root/tmp" 2>/dev/null || true; rm -f "$python"' EXIT
for dir in "$repo" /tmp; do
  mkdir -p "$root$dir"
  mountpoint -q "$root$dir" || mount --bind "$dir" "$root$dir"
done
printf '#!/bin/sh\nexec chroot %q sh -c '\''cd "$0" && exec python3 "$@"'\'' "$PWD" "$@"\n' "$root" > "$python"
chmod +x "$python"
chroot "$root" python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'

args=("$@")
(( ${#args[@]} )) || args=(--shape stories260K --steps 2 --batch 2 --seq 64)
bundle=()
[[ -x ${NATIVEREFT_BUNDLE:-$repo/out/gpu-bundle}/nativereft ]] && bundle=(--nativereft)
PYTHON="$python" bash "$here/run.sh" --device cpu --peers hook_loreft "${bundle[@]}" "${args[@]}"
