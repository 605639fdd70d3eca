# Sourced by the scripts that run on the GPU machine (gpu-run.sh, gpu-kernel-bench.sh): finds the bundle
# scripts/gpu-bundle.sh built ($bundle: $NATIVEREFT_BUNDLE, the folder of the calling script when it is the
# bundle, else out/gpu-bundle in the repo), makes the logs folder ($logs: $NATIVEREFT_GPU_LOGS, default
# ./gpu-logs) and puts NVRTC and cuBLAS on the loader path.
here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
bundle="${NATIVEREFT_BUNDLE:-}"
if [[ -z $bundle ]]; then
  if [[ -x $here/NativeReft.GpuRunner ]]; then bundle="$here"; else bundle="$(cd "$here/.." && pwd)/out/gpu-bundle"; fi
fi
if [[ ! -x $bundle/nativereft || ! -x $bundle/NativeReft.GpuRunner ]]; then
  echo "error: no bundle in $bundle: build it with scripts/gpu-bundle.sh (on a machine with the .NET SDK)"
  exit 2
fi
logs="${NATIVEREFT_GPU_LOGS:-$PWD/gpu-logs}"
mkdir -p "$logs"
export DOTNET_CLI_TELEMETRY_OPTOUT=1
source "$bundle/gpu-libraries.sh"
