#!/usr/bin/env bash
# Builds the bundle the GPU machine runs (it has an NVIDIA GPU and CUDA, but no .NET SDK and no network):
#
#   out/gpu-bundle/nativereft             the CLI (doctor, generate, ...)
#   out/gpu-bundle/NativeReft.GpuRunner   the [Category("Gpu")] tests under NUnit's own runner
#   out/gpu-bundle/NativeReft.Bench       the BenchmarkDotNet suites, in process (gpu-kernel-bench.sh runs the GPU one)
#   out/gpu-bundle/libnativereft_emu.so   the kernel emulator, so the bundle's --device emu works for a dry run
#   out/gpu-bundle/gpu-run.sh             every GPU check and measurement in one time budget (see that script)
#
# Each program is a self-contained linux-x64 single file: the framework trimmed (TrimMode=partial: our code,
# NUnit and the tokenizer library stay whole), compressed. The bundle must stay under 64 MiB, the most a device
# call carries; this script prints its size and fails above that. It also runs the runner's self-test here, so a
# trimming mistake shows up before the bundle travels.
#
# Usage: scripts/gpu-bundle.sh [OUTPUT_DIR]        (default: out/gpu-bundle, ignored by git)
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

out="${1:-out/gpu-bundle}"
limit=$((64 * 1024 * 1024))
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

publish() {
  echo "publishing $1"
  dotnet publish "$1" -c Release -r linux-x64 --self-contained true \
    -p:PublishSingleFile=true -p:EnableCompressionInSingleFile=true \
    -p:PublishTrimmed=true -p:TrimMode=partial \
    -p:DebugType=none -p:GenerateDocumentationFile=false \
    -o "$2" -v quiet
}
publish src/NativeReft.Cli "$work/cli"
publish tests/NativeReft.GpuRunner "$work/runner"
publish bench/NativeReft.Bench "$work/bench"

rm -rf "$out"
mkdir -p "$out"
cp "$work/cli/nativereft" "$work/runner/NativeReft.GpuRunner" "$work/bench/NativeReft.Bench" "$out/"
# BenchmarkDotNet's disassembler (libcapstone, amd64/) is left out: the suite does not disassemble.
[[ -f $work/cli/libnativereft_emu.so ]] && cp "$work/cli/libnativereft_emu.so" "$out/"
cp scripts/gpu-*.sh examples/memorise.jsonl "$out/"
rm -f "$out/gpu-bundle.sh"
stories=../shared/data/stories260K
if [[ -f $stories/stories260K.bin ]]; then
  mkdir -p "$out/data/stories260K"
  cp "$stories/stories260K.bin" "$stories/tok512.bin" "$out/data/stories260K/"
else
  echo "warning: $stories is missing: the bundle's stories260K tests and gpu-run.sh's loreft phase will fail"
fi

echo "self-test of the trimmed runner:"
"$out/NativeReft.GpuRunner" --category RunnerSelfTest | tail -n 1
"$out/NativeReft.GpuRunner" --category RunnerSelfTest --test 'RunnerSelfTests\.Numeric' | tail -n 1 # gpu-run.sh's --test
"$out/NativeReft.GpuRunner" --category RunnerSelfTest --exclude 'RunnerSelfTests\.Numeric' | tail -n 1 # and --exclude
echo "the trimmed CLI: $("$out/nativereft" doctor 2>&1 | tail -n 1)"

size=$(du -sb "$out" | cut -f 1)
ls -l "$out"
awk -v size="$size" -v dir="$out" 'BEGIN { printf "bundle %s: %d bytes = %.1f MiB (limit 64 MiB)\n", dir, size, size / 1048576 }'
if (( size >= limit )); then
  echo "error: the bundle is over 64 MiB"
  exit 1
fi
