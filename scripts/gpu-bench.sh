#!/usr/bin/env bash
# Everything the GPU performance issue measures, in one prepared run on the GPU machine (no .NET SDK or network
# needed there), from the bundle scripts/gpu-bundle.sh builds and the repo's bench/peers:
#
#   1. train        nativereft bench train at the Llama-2-7B shape, seq 512 (tokens/s, op breakdown, peak
#                   memory, MFU), and the PyTorch peers on the same workload in the same run (bench/peers/run.sh:
#                   HF + PEFT LoRA r=8, HF + hook LoReFT), with NativeReft/peer ratios
#   2. attention    the same bench train with --attention direct: the tensor-core attention's end-to-end gain
#   3. graph        bench train at TinyLlama-1.1B (where launches weigh most) with --graph off, then on: the
#                   captured step's gain, both sides in the same run
#   4. kernels      the BenchmarkDotNet kernel suite (scripts/gpu-kernel-bench.sh) against the device-to-device
#                   copy bandwidth, when the bundle has it
#
# Options through the environment: BENCH_SHAPE (llama2-7b), BENCH_SEQ (512), BENCH_BATCH (8), BENCH_STEPS (10).
# Logs and results go to $NATIVEREFT_GPU_LOGS (default ./gpu-logs); a summary is printed last and kept in
# bench-summary.txt, rewritten after each phase. Started from a repo
# copy with the bundle carried, e.g.: NATIVEREFT_GPU_LOGS=$OUT bash scripts/gpu-bench.sh
set -uo pipefail

source "$(dirname "$0")/gpu-common.sh" # $bundle, $logs, the CUDA libraries
repo="$(cd "$here/.." && pwd)"
[[ -x $repo/bench/peers/run.sh || -f $repo/bench/peers/run.sh ]] || repo="$(pwd)" # the bundle's copy: run from the repo root
shape="${BENCH_SHAPE:-llama2-7b}" seq="${BENCH_SEQ:-512}" batch="${BENCH_BATCH:-8}" steps="${BENCH_STEPS:-10}"

train_rc=pending direct_rc=pending graph_rc=pending kernels_rc=skipped train_s= direct_s= graph_s= kernels_s=
summary() { # what has run so far (rewritten after each phase: a call cut off by its time limit keeps it)
  echo
  gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
  echo "== summary (${gpu:-no GPU found}; logs in $logs)"
  echo "train + peers: exit $train_rc${train_s:+ in ${train_s} s} (train-peers.log, peers.jsonl)"
  native="$logs/peer-nativereft-$shape-seq$seq-b$batch.log" # bench/peers/run.sh's log of nativereft bench train
  grep -E '^(step |MFU|peak |the residual add runs outside)' "$native" 2>/dev/null | head -n 4
  sed -n '/^device time by op/,$p' "$native" 2>/dev/null | grep -v '^{' | head -n 14
  grep -E '^  compute-bound ops' "$native" 2>/dev/null | head -n 1 # the breakdown's last line: rates against the copy
  sed -n '/^== peers:/,$p' "$logs/train-peers.log" 2>/dev/null
  echo "direct attention: exit $direct_rc${direct_s:+ in ${direct_s} s} (train-direct-attention.log)"
  grep -E '^(step |MFU)' "$logs/train-direct-attention.log" 2>/dev/null | head -n 2
  grep -E '^  attention' "$logs/train-direct-attention.log" 2>/dev/null | head -n 2
  echo "graph off/on at tinyllama-1.1b: exit $graph_rc${graph_s:+ in ${graph_s} s} (train-graph-off.log, train-graph-on.log)"
  for mode in off on; do
    grep -E '^step [0-9.]+ ms|^step (replayed|queued)|graph capture failed' "$logs/train-graph-$mode.log" 2>/dev/null | head -n 3
  done
  echo "kernel suite: exit $kernels_rc${kernels_s:+ in ${kernels_s} s} (kernel-bench.log)"
}

nvidia-smi > "$logs/nvidia-smi.txt" 2>&1
echo "== train: nativereft and the PyTorch peers, $shape seq $seq batch $batch"
start=$SECONDS
NATIVEREFT_BUNDLE="$bundle" bash "$repo/bench/peers/run.sh" --shape "$shape" --seq "$seq" --batch "$batch" --steps "$steps" \
  --nativereft "$bundle" 2>&1 | tee "$logs/train-peers.log"
train_rc=${PIPESTATUS[0]}
train_s=$((SECONDS - start))
summary > "$logs/bench-summary.txt"

echo "== attention: the same step with the direct attention kernels (the default takes the tensor cores)"
start=$SECONDS
"$bundle/nativereft" bench train --shape "$shape" --seq "$seq" --batch "$batch" --steps 3 --warmup 1 --device cuda \
  --attention direct > "$logs/train-direct-attention.log" 2>&1
direct_rc=$?
direct_s=$((SECONDS - start))
summary > "$logs/bench-summary.txt"

echo "== graph: tinyllama-1.1b seq $seq batch $batch, the step op by op, then as one captured graph"
start=$SECONDS
graph_rc=0
for mode in off on; do
  "$bundle/nativereft" bench train --shape tinyllama-1.1b --seq "$seq" --batch "$batch" --steps 5 --warmup 1 --device cuda \
    --graph "$mode" > "$logs/train-graph-$mode.log" 2>&1 || graph_rc=$?
done
graph_s=$((SECONDS - start))
summary > "$logs/bench-summary.txt"

if [[ -f $bundle/gpu-kernel-bench.sh ]]; then
  echo "== kernels: the BenchmarkDotNet suite"
  start=$SECONDS
  bash "$bundle/gpu-kernel-bench.sh" 2>&1 | tee "$logs/kernel-bench.log"
  kernels_rc=${PIPESTATUS[0]}
  kernels_s=$((SECONDS - start))
fi

summary | tee "$logs/bench-summary.txt"
[[ $train_rc == 0 && ( $kernels_rc == 0 || $kernels_rc == skipped ) ]]
