#!/usr/bin/env bash
# The BenchmarkDotNet kernel suite (bench/NativeReft.Bench/Gpu: Perf_DeviceCopy, Perf_Linear, Perf_RmsNorm, ...)
# on the GPU machine, from the bundle: every kernel at the Llama-2-7B, Llama-3-8B, TinyLlama-1.1B and odd shapes
# (8 x 512 tokens), with GB/s and TFLOP/s beside each time; Perf_DeviceCopy is the bandwidth the memory-bound
# kernels are held against. Reports (markdown, csv) go to $NATIVEREFT_GPU_LOGS/bdn; the joined table is printed
# last. Extra arguments go to BenchmarkDotNet (e.g. --filter '*Perf_Attention*'). About 3 minutes on an H100.
set -uo pipefail

source "$(dirname "$0")/gpu-common.sh" # $bundle, $logs, the CUDA libraries
args=("$@")
(($#)) || args=(--filter '*Gpu.*')
"$bundle/NativeReft.Bench" "${args[@]}" --join --artifacts "$logs/bdn" 2>&1 | tee "$logs/kernel-bench-full.log"
rc=${PIPESTATUS[0]}
echo
echo "== kernel suite ($(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || echo 'no GPU: the emulator'))"
sed -n '/^| Type\|^| Method/,/^$/p' "$logs/kernel-bench-full.log" | tee "$logs/kernel-bench-table.md"
exit "$rc"
