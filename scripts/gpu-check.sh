#!/usr/bin/env bash
# The GPU check: everything the CUDA backend must show on a real GPU, in one run from the bundle that
# scripts/gpu-bundle.sh builds (no .NET SDK, no network needed there):
#
#   1. doctor       libraries, the GPU, every kernel compiled by NVRTC and loaded (registers, shared memory, spills)
#   2. tests        the [Category("Gpu")] tests: runtime, cuBLAS, every kernel's parity suite, the CUDA backend's
#                   op suite and its stories260K parity (logits, one training step's gradients, a loss curve); the
#                   tensor-core attention cases (and the head-size-64 training step) first, in a process of their own
#   3. train        a short LoReFT run on stories260K with --device cuda, then eval and generate with the result
#   4. bench        tokens/s of generate and of training on stories260K, and `bench train` at the TinyLlama-1.1B
#                   shape (real-size tensors, random weights; tokens/s, op breakdown, peak memory)
#   5. sanitizers   compute-sanitizer memcheck and racecheck over a 2-step training run, then memcheck, racecheck
#                   and synccheck over the tensor-core cases of the attention kernels' GPU parity suite (ldmatrix,
#                   cp.async, barriers; stories260K's head size 8 never runs them); last, as the slowest steps
#
# Logs go to $NATIVEREFT_GPU_LOGS (default ./gpu-logs), one file per step; the summary table is printed last and
# kept in summary.txt, rewritten after every step (so a call cut off by its time limit still says how far it got).
# Meant to finish in under 9 minutes on an H100 (the sanitizers about half of it). Started, e.g. from a repo copy with the bundle carried:
#   NATIVEREFT_GPU_LOGS=$OUT bash out/gpu-bundle/gpu-check.sh
# Exit code: 0 when every step passed.
set -uo pipefail

source "$(dirname "$0")/gpu-common.sh" # $bundle, $logs, the CUDA libraries
cli="$bundle/nativereft"
data="$bundle/data/stories260K"
export NATIVEREFT_STORIES260K="$data"

declare -a rows=()
failed=0
step() { # step NAME LOGFILE COMMAND...: runs, logs, records status and seconds
  local name=$1 log=$2; shift 2
  echo "== $name"
  local start=$SECONDS
  "$@" > "$logs/$log" 2>&1
  local rc=$?
  tail -n 5 "$logs/$log"
  local status=pass; (( rc == 0 )) || { status="FAIL (exit $rc)"; failed=1; }
  rows+=("$name|$status|$((SECONDS - start)) s|$log")
  summary > "$logs/summary.txt" # after every step: a run cut short by a time limit still leaves its summary
}

summary() { # the table of steps so far, and the figures the logs hold
  echo
  gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
  echo "== summary (${gpu:-no GPU found}; logs in $logs)"
  printf '%-16s %-40s %-8s %s\n' step status time log
  for row in "${rows[@]}"; do IFS='|' read -r a b c d <<< "$row"; printf '%-16s %-40s %-8s %s\n' "$a" "$b" "$c" "$d"; done
  echo "GPU tests:      $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$logs/gpu-tests.log" 2>/dev/null | tail -n 1)"
  echo "  tensor cores: $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$logs/gpu-tests-tensor-cores.log" 2>/dev/null | tail -n 1)"
  grep -hE '^(FAIL|FIXTURE) ' "$logs/gpu-tests-tensor-cores.log" "$logs/gpu-tests.log" 2>/dev/null | sort -u | head -n 20
  echo "eval:           $(grep -iE 'exact' "$logs/eval.log" 2>/dev/null | tail -n 1)"
  echo "generate:       $(grep -E 'achieved tok/s' "$logs/bench-generate.log" 2>/dev/null | tail -n 1)"
  echo "train:          $(grep -iE 'tok/s|tokens/s' "$logs/bench-train.log" 2>/dev/null | tail -n 1)"
  echo "1.1B step:      $(grep -E '^step .*tokens/s' "$logs/bench-tinyllama.log" 2>/dev/null | tail -n 1); $(grep -E '^peak' "$logs/bench-tinyllama.log" 2>/dev/null | tail -n 1)"
  for tool in memcheck racecheck memcheck-attention racecheck-attention synccheck-attention; do
    [[ -f $logs/$tool.log ]] && echo "$tool:$(printf '%*s' $((20 - ${#tool})) '')$(grep -E 'ERROR SUMMARY' "$logs/$tool.log" | tail -n 1)"
  done
}

model=(--model "$data/stories260K.bin" --tokenizer "$data/tok512.bin")
train=(train "${model[@]}" --device cuda --data "$bundle/memorise.jsonl" --rank 4 --layers all --positions f1+l1 --lr 2e-2 --batch-size 3)

nvidia-smi > "$logs/nvidia-smi.txt" 2>&1
# The tensor-core attention (mma, ldmatrix, cp.async) runs in a process of its own first: a kernel that faults
# poisons its CUDA context, and would fail every later test of the same run.
tensor_cores='AttentionKernelGpuTests\..*\(tc |head_size_64'
step doctor doctor.log "$cli" doctor
step "GPU tests, tc" gpu-tests-tensor-cores.log "$bundle/NativeReft.GpuRunner" --test "$tensor_cores"
step "GPU tests" gpu-tests.log "$bundle/NativeReft.GpuRunner" --exclude "$tensor_cores"
step train train.log "$cli" "${train[@]}" --epochs 300 --out "$logs/run"
step eval eval.log "$cli" eval "${model[@]}" --device cuda --data "$bundle/memorise.jsonl" --intervention "$logs/run"
step generate generate.log "$cli" generate "${model[@]}" --device cuda --intervention "$logs/run" --prompt "Who is Lily?" --temperature 0 --max-tokens 200

step "bench generate" bench-generate.log "$cli" generate "${model[@]}" --device cuda --prompt "Once upon a time" --temperature 0 --max-tokens 256
step "bench train" bench-train.log "$cli" "${train[@]}" --epochs 50 --out "$logs/bench-run"
step "bench 1.1B" bench-tinyllama.log "$cli" bench train --shape tinyllama-1.1b --seq 512 --batch 4 --steps 3 --warmup 1 --device cuda

# The sanitizers last: the slowest steps, and the ones to lose if the call runs out of time.
sanitizer="$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer /opt/nvidia/*/compute-sanitizer 2>/dev/null | head -n 1)"
if [[ -n $sanitizer ]]; then
  step memcheck memcheck.log "$sanitizer" --tool memcheck --error-exitcode 3 "$cli" "${train[@]}" --epochs 2 --out "$logs/memcheck-run"
  step racecheck racecheck.log "$sanitizer" --tool racecheck --error-exitcode 3 "$cli" "${train[@]}" --epochs 2 --out "$logs/racecheck-run"
  for tool in memcheck racecheck synccheck; do
    step "$tool flash" "$tool-attention.log" "$sanitizer" --tool "$tool" --error-exitcode 3 \
      "$bundle/NativeReft.GpuRunner" --test 'AttentionKernelGpuTests\..*\(tc '
  done
else
  rows+=("memcheck|SKIPPED (no compute-sanitizer found)|0 s|-" "racecheck|SKIPPED (no compute-sanitizer found)|0 s|-")
fi

summary | tee "$logs/summary.txt"
exit $failed
