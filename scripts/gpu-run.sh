#!/usr/bin/env bash
# The one prepared run for a GPU lease: every check and measurement the GPU needs, most valuable first, inside one
# time budget, from the bundle scripts/gpu-bundle.sh builds (the GPU machine has no .NET SDK and no network). A
# lease is 15 minutes of device time with the machine's start counted in, so the default budget leaves room for a
# second call. Each step runs under a time limit cut to what is left of the budget; a step that no longer fits is
# reported "skipped (out of time)", and the summary ends with the command that runs the phases still to go.
#
#   doctor       libraries, the GPU, every kernel compiled by NVRTC and loaded (registers, shared memory, spills)
#   train-7b     nativereft bench train at the Llama-2-7B shape, seq 512, batch 8 (tokens/s, MFU, peak memory, the
#                step by op with TFLOP/s and share of the copy bandwidth), then the PyTorch peers on the same
#                workload (bench/peers/run.sh: HF + PEFT LoRA r=8, HF + hook LoReFT) and the NativeReft/peer ratios
#   tests        the [Category("Gpu")] tests: the tensor-core attention cases first, in a process of their own (a
#                kernel that faults poisons its context for every later test), then the rest (runtime, cuBLAS,
#                every kernel's parity suite, the CUDA backend against the CPU on stories260K, graphs)
#   kernels      the BenchmarkDotNet kernel suite at the Llama-2-7B shape, each memory-bound kernel against the
#                device-to-device copy in the same run (NATIVEREFT_BENCH_SHAPES=all for every registry shape)
#   loreft       a LoReFT run on stories260K on the GPU: train, eval and generate with the result, then greedy
#                decoding and training speed
#   attention    train-7b's step with --attention direct: what the tensor-core attention gives end to end
#   graph        bench train at the TinyLlama-1.1B shape with --graph off, then on: what the captured step gives
#   sanitizers   compute-sanitizer memcheck and racecheck over a 2-step training run, then memcheck, racecheck and
#                synccheck over the tensor-core attention cases (ldmatrix, cp.async, barriers)
#
# On the GPU machine, from a repo copy with out/gpu-bundle carried:
#   NATIVEREFT_GPU_OUT=$OUT bash scripts/gpu-run.sh [PHASE ...]      (no PHASE: all, in the order above)
# Environment:
#   NATIVEREFT_GPU_SECONDS  the budget in seconds (default 330)
#   NATIVEREFT_GPU_OUT      a folder that gets only summary.txt and gpu-logs.tgz (every log), both rewritten after
#                           each step: a device call brings back at most 8 files
#   NATIVEREFT_GPU_LOGS     where the logs are written (default ./gpu-logs, or a temporary folder with the above)
#   NATIVEREFT_GPU_DEVICE   the CLI's --device (default cuda; emu: a dry run of the CLI steps without a GPU, with no
#                           peers, 2 epochs for the LoReFT run and BENCH_SHAPE for the graph phase)
#   BENCH_SHAPE, BENCH_SEQ, BENCH_BATCH, BENCH_STEPS   train-7b's workload (llama2-7b, 512, 8, 10)
#   BENCH_PEERS             train-7b's peers (default "peft_lora hook_loreft"; none: NativeReft alone)
# Exit code: 0 when every step ran and passed, 1 when one failed, was cut short or did not fit, 2 on bad arguments.
set -uo pipefail

phases=(doctor train-7b tests kernels loreft attention graph sanitizers)
budget="${NATIVEREFT_GPU_SECONDS:-330}"
out="${NATIVEREFT_GPU_OUT:-}"
[[ $budget =~ ^[0-9]+$ ]] || { echo "error: NATIVEREFT_GPU_SECONDS must be a whole number of seconds (got '$budget')" >&2; exit 2; }
for p in "$@"; do
  [[ " ${phases[*]} " == *" $p "* ]] || { echo "error: unknown phase '$p'; the phases: ${phases[*]}" >&2; exit 2; }
done
selected=("${phases[@]}")
(($#)) && selected=("$@")
if [[ -n $out && -z ${NATIVEREFT_GPU_LOGS:-} ]]; then
  NATIVEREFT_GPU_LOGS="$(mktemp -d)/gpu-logs"
fi
deadline=$((SECONDS + budget))

source "$(dirname "$0")/gpu-common.sh" # $bundle, $logs, the CUDA libraries
export NATIVEREFT_GPU_LOGS="$logs" NATIVEREFT_STORIES260K="$bundle/data/stories260K"
repo="$(cd "$here/.." && pwd)" # $here: this script's folder (gpu-common.sh)
[[ -f $repo/bench/peers/run.sh ]] || repo="$(pwd)" # the bundle's copy of this script: run from the repo root
device="${NATIVEREFT_GPU_DEVICE:-cuda}"
shape="${BENCH_SHAPE:-llama2-7b}" seq="${BENCH_SEQ:-512}" batch="${BENCH_BATCH:-8}" steps="${BENCH_STEPS:-10}"
peers="${BENCH_PEERS:-peft_lora hook_loreft}" graph_shape=tinyllama-1.1b epochs=300 bench_epochs=50
if [[ $device != cuda ]]; then # a dry run of the CLI steps (CI runs one on the emulator): small and short
  peers=none graph_shape="$shape" epochs=2 bench_epochs=2
fi
cli="$bundle/nativereft"
data="$bundle/data/stories260K"
model=(--model "$data/stories260K.bin" --tokenizer "$data/tok512.bin")
dataset="$bundle/memorise.jsonl"
train=(train "${model[@]}" --device "$device" --data "$dataset" --rank 4 --layers all --positions f1+l1 --lr 2e-2 --batch-size 3)
tc_attention='AttentionKernelGpuTests\..*\(tc ' # the attention kernels' tensor-core cases
tensor_cores="$tc_attention|head_size_64" # and the training step that takes them
native_log="peer-nativereft-$shape-seq$seq-b$batch.log" # bench/peers/run.sh's log of nativereft bench train

declare -a rows=() left_over=()
failed=0
phase="" # the phase running, for left_over

# step NAME LOG CAP COMMAND...: COMMAND, its output in LOG, for at most CAP seconds and not past the deadline.
step() {
  local name=$1 log=$2 cap=$3 status; shift 3
  local left=$((deadline - SECONDS))
  if (( left < 10 )); then
    rows+=("$name|skipped (out of time)|-|-")
    failed=1
    leave_over
    save
    return
  fi
  (( cap > left )) && cap=$left
  echo "== $name (at most $cap s)"
  local start=$SECONDS
  timeout -k 10 "$cap" "$@" > "$logs/$log" 2>&1
  local rc=$?
  tail -n 5 "$logs/$log"
  (( rc == 137 && SECONDS - start < cap )) && rc=9137 # killed before its limit: not timeout's doing
  case $rc in
    0) status=pass ;;
    124 | 137) status="CUT at its $cap s limit"; failed=1; leave_over ;;
    9137) status="FAIL (killed: out of memory?)"; failed=1 ;;
    *) status="FAIL (exit $rc)"; failed=1 ;;
  esac
  rows+=("$name|$status|$((SECONDS - start)) s|$log")
  save
}

leave_over() { # the phase running is to be run again
  [[ " ${left_over[*]} " == *" $phase "* ]] || left_over+=("$phase")
}

# The summary, and what comes back from the device call: the summary and one archive of every log.
save() {
  summary > "$logs/summary.txt"
  [[ -n $out ]] || return 0
  mkdir -p "$out"
  cp "$logs/summary.txt" "$out/summary.txt.tmp" && mv "$out/summary.txt.tmp" "$out/summary.txt"
  tar -czf "$out/gpu-logs.tgz.tmp" -C "$(dirname "$logs")" "$(basename "$logs")" 2>/dev/null && mv "$out/gpu-logs.tgz.tmp" "$out/gpu-logs.tgz"
}

figure() { # figure LABEL LOG PATTERN: LOG's last line matching PATTERN, labelled, if the log exists
  [[ -f $logs/$2 ]] && printf '%-16s%s\n' "$1" "$(grep -E "$3" "$logs/$2" | tail -n 1)"
  return 0
}

summary() {
  echo
  echo "== summary (${gpu:-no GPU found}, --device $device; budget $budget s, $((SECONDS)) s used; logs in $logs)"
  printf '%-28s %-30s %-7s %s\n' step status time log
  local row a b c d
  for row in "${rows[@]}"; do IFS='|' read -r a b c d <<< "$row"; printf '%-28s %-30s %-7s %s\n' "$a" "$b" "$c" "$d"; done
  if [[ -f $logs/$native_log ]]; then
    echo "-- nativereft bench train, $shape seq $seq batch $batch"
    grep -E '^(step [0-9.]+ ms|MFU|peak |step (replayed|queued)|the residual add runs outside)' "$logs/$native_log" | head -n 5
    sed -n '/^device time by op/,$p' "$logs/$native_log" | grep -v '^{' | head -n 14
    grep -E '^  compute-bound ops' "$logs/$native_log" | head -n 1
  fi
  [[ -f $logs/train-peers.log ]] && sed -n '/^== peers:/,$p' "$logs/train-peers.log"
  figure "GPU tests:" gpu-tests.log '^[0-9]+ passed, [0-9]+ failed'
  figure "  tensor cores:" gpu-tests-tensor-cores.log '^[0-9]+ passed, [0-9]+ failed'
  grep -hE '^(FAIL|FIXTURE) ' "$logs/gpu-tests-tensor-cores.log" "$logs/gpu-tests.log" 2>/dev/null | sort -u | head -n 20
  [[ -f $logs/kernel-bench-table.md ]] && { echo "-- kernel suite"; cat "$logs/kernel-bench-table.md"; }
  figure "eval:" eval.log '[Ee]xact'
  figure "generate:" bench-generate.log 'achieved tok/s'
  figure "train:" bench-train.log 'tok/s|tokens/s'
  figure "direct attn:" train-direct-attention.log '^step [0-9.]+ ms'
  grep -E '^  attention' "$logs/train-direct-attention.log" 2>/dev/null | head -n 2
  figure "graph off:" train-graph-off.log '^step [0-9.]+ ms|graph capture failed'
  figure "graph on:" train-graph-on.log '^step [0-9.]+ ms|graph capture failed'
  figure "" train-graph-on.log '^step (replayed|queued)'
  local tool
  for tool in memcheck racecheck memcheck-attention racecheck-attention synccheck-attention; do
    figure "$tool:" "$tool.log" 'ERROR SUMMARY'
  done
  if ((${#left_over[@]})); then
    echo "not finished in time: ${left_over[*]}; to run them: NATIVEREFT_GPU_OUT=\$OUT bash scripts/gpu-run.sh ${left_over[*]}"
  fi
}

run_doctor() {
  step doctor doctor.log 120 "$cli" doctor
}

run_train_7b() {
  step "train $shape + peers" train-peers.log 300 env NATIVEREFT_BUNDLE="$bundle" bash "$repo/bench/peers/run.sh" \
    --shape "$shape" --seq "$seq" --batch "$batch" --steps "$steps" --device "$device" --nativereft "$bundle" --peers "$peers"
}

run_tests() {
  step "GPU tests, tc" gpu-tests-tensor-cores.log 150 "$bundle/NativeReft.GpuRunner" --test "$tensor_cores"
  step "GPU tests" gpu-tests.log 240 "$bundle/NativeReft.GpuRunner" --exclude "$tensor_cores"
}

run_kernels() {
  step "kernel suite" kernel-bench.log 240 env NATIVEREFT_BENCH_SHAPES="${NATIVEREFT_BENCH_SHAPES:-$shape}" \
    bash "$bundle/gpu-kernel-bench.sh"
}

run_loreft() {
  step train train.log 90 "$cli" "${train[@]}" --epochs "$epochs" --out "$logs/run"
  step eval eval.log 30 "$cli" eval "${model[@]}" --device "$device" --data "$dataset" --intervention "$logs/run"
  step generate generate.log 30 "$cli" generate "${model[@]}" --device "$device" --intervention "$logs/run" \
    --prompt "Who is Lily?" --temperature 0 --max-tokens 200
  step "bench generate" bench-generate.log 30 "$cli" generate "${model[@]}" --device "$device" \
    --prompt "Once upon a time" --temperature 0 --max-tokens 256
  step "bench train" bench-train.log 60 "$cli" "${train[@]}" --epochs "$bench_epochs" --out "$logs/bench-run"
}

run_attention() {
  step "direct attention" train-direct-attention.log 120 "$cli" bench train --shape "$shape" --seq "$seq" \
    --batch "$batch" --steps 3 --warmup 1 --device "$device" --attention direct
}

run_graph() {
  local mode
  for mode in off on; do
    step "graph $mode, $graph_shape" "train-graph-$mode.log" 90 "$cli" bench train --shape "$graph_shape" --seq "$seq" \
      --batch "$batch" --steps 5 --warmup 1 --device "$device" --graph "$mode"
  done
}

run_sanitizers() {
  local sanitizer tool
  sanitizer="$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer /opt/nvidia/*/compute-sanitizer 2>/dev/null | head -n 1)"
  if [[ -z $sanitizer ]]; then
    rows+=("sanitizers|skipped (no compute-sanitizer)|-|-")
    return
  fi
  for tool in memcheck racecheck; do
    step "$tool" "$tool.log" 150 "$sanitizer" --tool "$tool" --error-exitcode 3 "$cli" "${train[@]}" --epochs 2 --out "$logs/$tool-run"
  done
  for tool in memcheck racecheck synccheck; do
    step "$tool, tc attention" "$tool-attention.log" 150 "$sanitizer" --tool "$tool" --error-exitcode 3 \
      "$bundle/NativeReft.GpuRunner" --test "$tc_attention"
  done
}

nvidia-smi > "$logs/nvidia-smi.txt" 2>&1
gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)" # once: it takes a while
for phase in "${selected[@]}"; do
  "run_${phase//-/_}"
done
save
cat "$logs/summary.txt"
exit "$failed"
