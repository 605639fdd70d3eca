#!/usr/bin/env bash
# Runs on the GPU machine, from the bundle scripts/gpu-bundle.sh built: `nativereft doctor` (libraries, GPU,
# every kernel compiled and loaded, with registers/shared memory/spills), then the [Category("Gpu")] tests.
# Needs no .NET SDK and no network. Logs (doctor.log, gpu-tests.log, summary.txt, nvidia-smi.txt) go to the
# folder $NATIVEREFT_GPU_LOGS (default: ./gpu-logs); the summary is printed at the end.
#
#   bash scripts/gpu-test.sh                  from the repo root, bundle in out/gpu-bundle
#   bash out/gpu-bundle/gpu-test.sh           the copy inside the bundle
#   NATIVEREFT_BUNDLE=DIR                     a bundle elsewhere
#
# Exit code: 0 when doctor succeeds and every GPU test passes (none failed, at least one ran).
set -uo pipefail

source "$(dirname "$0")/gpu-common.sh" # $bundle, $logs, the CUDA libraries

{
  echo "bundle: $bundle"
  echo "LD_LIBRARY_PATH: $LD_LIBRARY_PATH"
  command -v nvidia-smi >/dev/null && nvidia-smi
} > "$logs/nvidia-smi.txt" 2>&1

echo "== nativereft doctor"
"$bundle/nativereft" doctor 2>&1 | tee "$logs/doctor.log"
doctor=${PIPESTATUS[0]}

echo
echo "== GPU tests"
"$bundle/NativeReft.GpuRunner" 2>&1 | tee "$logs/gpu-tests.log"
tests=${PIPESTATUS[0]}

{
  echo "doctor: exit $doctor ($(tail -n 1 "$logs/doctor.log"))"
  echo "GPU tests: exit $tests ($(grep -E '^[0-9]+ passed, [0-9]+ failed' "$logs/gpu-tests.log" | tail -n 1))"
  grep -E '^(FAIL|FIXTURE) ' "$logs/gpu-tests.log" | sort -u
} > "$logs/summary.txt"
echo
echo "== summary (logs in $logs)"
cat "$logs/summary.txt"
(( doctor == 0 && tests == 0 ))
