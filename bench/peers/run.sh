#!/usr/bin/env bash
# The PyTorch peers of `nativereft bench train`, one python process each (so each peak memory is its own), on
# the same shape, batch and sequence; optionally NativeReft itself from the GPU bundle, then a table with the
# NativeReft/peer tokens/s ratios.
#
#   bench/peers/run.sh [--shape S] [--seq N] [--batch B] [--steps N] [--warmup N] [--rank R] [--positions P]
#                      [--device cuda|cpu] [--peers "peft_lora hook_loreft" | none] [--nativereft [BUNDLE_DIR]]
#
# Defaults: llama2-7b, seq 512, batch 8, 10 timed steps after 2 warm-up steps, rank 8, f7+l7, cuda, both peers.
# --nativereft runs `BUNDLE_DIR/nativereft bench train ... --json` too (BUNDLE_DIR: $NATIVEREFT_BUNDLE, else
# out/gpu-bundle at the repo root, as scripts/gpu-bundle.sh builds it).
# Every result is one JSON line appended to $NATIVEREFT_GPU_LOGS/peers.jsonl (default ./gpu-logs); each process's
# full output is in that folder too. A peer that runs out of memory is reported as "OOM at batch B".
# $PYTHON picks the interpreter (default python3). Smoke test on a CPU with PyTorch, transformers and peft:
#   bench/peers/run.sh --device cpu --shape stories260K --steps 2 --batch 2 --seq 64
# Exit code: 0 when every run produced a result (an OOM counts as a result), 1 otherwise, 2 on bad arguments.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
shape=llama2-7b seq=512 batch=8 steps=10 warmup=2 rank=8 positions=f7+l7 device=cuda
peers="peft_lora hook_loreft"
bundle=""

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
need() { [[ $# -ge 2 && -n $2 ]] || { echo "error: $1 needs a value" >&2; exit 2; }; }
while (($#)); do
  case $1 in
    --shape) need "$@"; shape=$2; shift 2 ;;
    --seq) need "$@"; seq=$2; shift 2 ;;
    --batch) need "$@"; batch=$2; shift 2 ;;
    --steps) need "$@"; steps=$2; shift 2 ;;
    --warmup) need "$@"; warmup=$2; shift 2 ;;
    --rank) need "$@"; rank=$2; shift 2 ;;
    --positions) need "$@"; positions=$2; shift 2 ;;
    --device) need "$@"; device=$2; shift 2 ;;
    --peers) need "$@"; peers=$2; shift 2 ;;
    --nativereft)
      if [[ $# -ge 2 && $2 != --* ]]; then bundle=$2; shift 2
      else bundle="${NATIVEREFT_BUNDLE:-$repo/out/gpu-bundle}"; shift; fi ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $peers == none ]] && peers=""
for p in $peers; do
  [[ -f $here/$p.py ]] || { echo "error: no peer '$p' (bench/peers/$p.py)" >&2; exit 2; }
done
if [[ -n $bundle && ! -x $bundle/nativereft ]]; then
  echo "error: no nativereft in $bundle: build the bundle with scripts/gpu-bundle.sh" >&2
  exit 2
fi

logs="${NATIVEREFT_GPU_LOGS:-$PWD/gpu-logs}"
mkdir -p "$logs"
jsonl="$logs/peers.jsonl"
tag="$shape-seq$seq-b$batch"
this_run="$(mktemp)"
trap 'rm -f "$this_run"' EXIT
common=(--shape "$shape" --seq "$seq" --batch "$batch" --steps "$steps" --warmup "$warmup" --rank "$rank"
        --positions "$positions" --device "$device")

# record NAME LOG RC: the last JSON line of LOG, tagged with the run, into peers.jsonl and this run's list; a
# process that printed none becomes an error line (out of memory when its output says so). Fails unless the run
# gave a result or ran out of memory.
record() {
  "$python" - "$1" "$2" "$3" "$jsonl" "$this_run" "$shape" "$seq" "$batch" <<'PY'
import json, re, sys, time
name, log, rc, jsonl, this_run, shape, seq, batch = sys.argv[1:]
text = open(log, errors="replace").read()
result = None
for line in reversed(text.splitlines()):
    line = line.strip()
    if line.startswith("{"):
        try:
            result = json.loads(line)
            break
        except ValueError:
            pass
if result is None:
    oom = re.search(r"out of memory|OutOfMemory|CUDA_ERROR_OUT_OF_MEMORY|CUBLAS_STATUS_ALLOC_FAILED", text, re.I)
    result = {"shape": shape, "seq": int(seq), "batch": int(batch),
              "error": "OOM" if oom else f"exit {rc}", "log": log}
result.setdefault("peer", name)
result["exit_code"] = int(rc)
result["time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
line = json.dumps(result)
for path in (jsonl, this_run):
    with open(path, "a") as f:
        f.write(line + "\n")
sys.exit(0 if result.get("error") in (None, "OOM") else 1)
PY
}

failed=0
# NativeReft first: a run cut short by its time limit keeps the figure the peers are held against.
if [[ -n $bundle ]]; then
  log="$logs/peer-nativereft-$tag.log"
  echo "== nativereft ($tag, $device)"
  # The bundle's library finder puts NVRTC/cuBLAS folders on LD_LIBRARY_PATH: only for this process.
  (
    [[ -f $bundle/gpu-libraries.sh ]] && source "$bundle/gpu-libraries.sh"
    export DOTNET_CLI_TELEMETRY_OPTOUT=1
    exec "$bundle/nativereft" bench train --shape "$shape" --seq "$seq" --batch "$batch" --steps "$steps" \
      --warmup "$warmup" --layers all --rank "$rank" --positions "$positions" --device "$device" --json
  ) > "$log" 2>&1
  rc=$?
  tail -n 3 "$log"
  record nativereft "$log" "$rc" || failed=1
fi

for p in $peers; do
  log="$logs/peer-$p-$tag.log"
  echo "== $p ($tag, $device)"
  "$python" "$here/$p.py" "${common[@]}" > "$log" 2>&1
  rc=$?
  tail -n 3 "$log"
  record "$p" "$log" "$rc" || failed=1
done

# The table: tokens/s, step, peak memory (in use, and held: PyTorch's reserved, NativeReft's pool with its cache),
# trainable parameters, and NativeReft/peer. Both sides' ratio figure
# is tokens per median step (nativereft's tokens_per_s is, the peers' tokens_per_s_median is); the peers'
# tokens_per_s column is B * seq * steps / total time.
"$python" - "$this_run" "$jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if not rows:
    sys.exit(0)
first = rows[0]
gpu = next((r.get("gpu") for r in rows if r.get("gpu")), first.get("device", "?"))
print()
print(f"== peers: {first.get('shape')}, batch {first.get('batch')} x seq {first.get('seq')}, rank "
      f"{first.get('rank', '?')}, {first.get('positions', '?')}; {gpu}  (results appended to {sys.argv[2]})")
native = next((r for r in rows if r.get("peer") == "nativereft" and "error" not in r), None)
def per_median(r):
    return r.get("tokens_per_s_median", r.get("tokens_per_s"))
print(f"{'run':<13} {'tokens/s':>11} {'median tok/s':>13} {'step ms':>9} {'peak GiB':>9} {'held GiB':>9} {'trainable':>12}  NativeReft/run")
for r in rows:
    name = r.get("peer", "?")
    if "error" in r:
        status = f"OOM at batch {r.get('batch')}" if r["error"] == "OOM" else f"FAILED ({r['error']})"
        print(f"{name:<13} {status}")
        continue
    ratio = ""
    if native is not None and name != "nativereft" and per_median(r):
        ratio = f"{per_median(native) / per_median(r):.2f}x"
    trainable = r.get("trainable_params")
    trainable = f"{trainable:,}" if isinstance(trainable, int) else "-"
    held = r.get("peak_reserved_gib")
    held = f"{held:.2f}" if isinstance(held, (int, float)) else "-"
    print(f"{name:<13} {r['tokens_per_s']:>11,.0f} {per_median(r):>13,.0f} {r['step_ms']:>9.1f} "
          f"{r['peak_gib']:>9.2f} {held:>9} {trainable:>12}  {ratio}")
if native is None and any(r.get("peer") == "nativereft" for r in rows):
    print("nativereft gave no result: no ratios")
PY

exit "$failed"
