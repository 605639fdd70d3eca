"""What the PyTorch peers share: the random-weight bf16 LlamaForCausalLM, the synthetic workload of
`nativereft bench train`, the training step, the timing loop and the one-line JSON result.

The workload (src/NativeReft/Training/SyntheticBatch.cs, ReftBatch.cs, Reft/PositionSpec.cs):
  * `batch` sequences of `seq` tokens; token 0 is BOS (1), tokens 1..seq-1 are drawn from [3, vocab) by .NET's
    seeded System.Random(1) in order (sequence 0 first), reproduced bit for bit by NetRandom below;
  * the prompt is the first seq // 2 tokens, the response the rest: labels are -100 on the prompt and the token
    ids on the response, so HF's shifted loss scores exactly NativeReft's labelled rows (position t predicts
    token t + 1 for prompt_len - 1 <= t <= seq - 2) and averages over them as NativeReft's 1 / targets does;
  * interventions edit the first min(7, P // 2) and the last min(7, P // 2) prompt positions (P = seq // 2),
    the same positions in every sequence, one (tied) intervention per layer;
  * one step = zero grads, forward, backward, clip the global grad norm to 1.0, AdamW (lr 1e-4, betas 0.9 /
    0.999, eps 1e-8, no weight decay) on the trainable parameters only, then wait for the device;
  * `warmup` untimed steps, peak memory reset, then `steps` timed steps, each timed on the host clock around the
    step and a device synchronize, as BenchCommand.cs times its steps.
"""

import argparse
import json
import math
import os
import re
import sys
import time

import shapes


class NetRandom:
    """.NET's System.Random(seed) (the seeded, Knuth subtractive generator): Next(lo, hi) as C# returns it."""

    MBIG = 2147483647
    MSEED = 161803398

    def __init__(self, seed):
        state = [0] * 56
        mj = self.MSEED - (self.MBIG if seed == -2147483648 else abs(seed))
        state[55] = mj
        mk, ii = 1, 0
        for _ in range(1, 55):
            ii = (ii + 21) % 55
            state[ii] = mk
            mk = mj - mk
            if mk < 0:
                mk += self.MBIG
            mj = state[ii]
        for _ in range(4):
            for i in range(1, 56):
                n = i + 30
                if n >= 55:
                    n -= 55
                state[i] -= state[1 + n]
                if state[i] < 0:
                    state[i] += self.MBIG
        self._state, self._next, self._nextp = state, 0, 21

    def _sample(self):
        a = 1 if self._next + 1 >= 56 else self._next + 1
        b = 1 if self._nextp + 1 >= 56 else self._nextp + 1
        value = self._state[a] - self._state[b]
        if value == self.MBIG:
            value -= 1
        if value < 0:
            value += self.MBIG
        self._state[a], self._next, self._nextp = value, a, b
        return value

    def next(self, lo, hi):
        """An int in [lo, hi), as Random.Next(lo, hi) for hi - lo <= int.MaxValue."""
        return int(self._sample() * (1.0 / self.MBIG) * (hi - lo)) + lo


def parse_positions(text):
    """'f7+l7', 'f1', 'l3' -> (first, last), as PositionSpec.Parse."""
    m = re.fullmatch(r"(?:f(\d{1,5}))?(?:\+?l(\d{1,5}))?", text.strip(), re.IGNORECASE)
    if not m or not (m.group(1) or m.group(2)):
        raise ValueError(f"invalid positions '{text}': expected f<first>+l<last>, e.g. f7+l7, f1 or l3")
    first, last = int(m.group(1) or 0), int(m.group(2) or 0)
    if first + last == 0:
        raise ValueError(f"invalid positions '{text}': at least one position is needed")
    return first, last


def prompt_positions(first, last, prompt_len):
    """The intervened prompt positions: 0..f-1 and P-l..P-1, each count clamped to P // 2 (PositionSpec)."""
    f, l = min(first, prompt_len // 2), min(last, prompt_len // 2)
    return list(range(f)) + list(range(prompt_len - l, prompt_len))


def synthetic_tokens(batch, seq, vocab, seed=1):
    """SyntheticBatch.Create's token ids: a list of `batch` lists of `seq` ints."""
    rng = NetRandom(seed)
    rows = []
    for _ in range(batch):
        rows.append([1] + [rng.next(3, vocab) for _ in range(seq - 1)])
    return rows


def parse_args(peer, description, add_arguments=None, argv=None):
    p = argparse.ArgumentParser(prog=f"{peer}.py", description=description)
    p.add_argument("--shape", default="llama2-7b", help=f"model shape: {', '.join(shapes.SHAPES)}")
    p.add_argument("--seq", type=int, default=512, help="tokens per sequence (first half prompt, second half response)")
    p.add_argument("--batch", type=int, default=8, help="sequences per step")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (the smoke mode)")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"], help="base model dtype")
    p.add_argument("--rank", type=int, default=8, help="LoRA r / LoReFT rank")
    p.add_argument("--positions", default="f7+l7", help="intervened prompt positions (LoReFT; recorded for LoRA)")
    p.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate")
    p.add_argument("--seed", type=int, default=1, help="token seed (NativeReft's is 1)")
    if add_arguments:
        add_arguments(p)
    args = p.parse_args(argv)
    try:
        args.shape = shapes.canonical(args.shape)
        args.first, args.last = parse_positions(args.positions)
    except ValueError as e:
        p.error(str(e))
    max_len = shapes.SHAPES[args.shape]["max_position_embeddings"]
    if not 4 <= args.seq <= max_len:
        p.error(f"--seq must be between 4 and the shape's {max_len} positions (got {args.seq})")
    if args.batch < 1 or args.steps < 1 or args.warmup < 0 or args.rank < 1:
        p.error("--batch, --steps and --rank must be at least 1, --warmup at least 0")
    return args


def log(message):
    print(message, file=sys.stderr, flush=True)


def device_scope(device):
    """`with torch.device(device)`: tensors made inside land on `device` (torch >= 2.0; older torch, which
    lacks it, gets a no-op scope, enough for the CPU smoke)."""
    import contextlib

    import torch

    return torch.device(device) if hasattr(torch.device, "__enter__") else contextlib.nullcontext()


def _versions():
    out = {}
    for name in ("torch", "transformers", "peft"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "?")
    return out


def llama_config(shape):
    """The HF LlamaConfig of a shape. transformers 5 keeps RoPE settings in `rope_parameters`; 4.x takes
    `rope_theta`. Either way the theta read back must be the table's."""
    import transformers
    from transformers import LlamaConfig

    kwargs = shapes.config_kwargs(shape)
    theta = kwargs.pop("rope_theta")
    config = None
    if int(transformers.__version__.split(".")[0]) >= 5:
        try:
            config = LlamaConfig(**kwargs, rope_parameters={"rope_type": "default", "rope_theta": theta})
        except TypeError:
            config = None
    if config is None:
        config = LlamaConfig(**kwargs, rope_theta=theta)
    params = getattr(config, "rope_parameters", None)
    got = params.get("rope_theta") if isinstance(params, dict) else getattr(config, "rope_theta", None)
    if got is None or float(got) != float(theta):
        raise RuntimeError(f"LlamaConfig did not take rope theta {theta} (reads back {got!r})")
    try:
        config._attn_implementation = "sdpa"
    except Exception:  # a version without the setter: set_attn_implementation below
        pass
    return config


def build_model(shape, device, dtype, seed=1234):
    """LlamaForCausalLM of the shape with random weights, made directly on `device` in `dtype` (no download, no
    CPU copy; HF's own init runs on the device, then every weight is refilled as LlamaModel.Random fills
    NativeReft's: norms 1, each matrix uniform(-1/sqrt(in), 1/sqrt(in)) with in = its last dimension)."""
    import torch
    from transformers import LlamaForCausalLM

    config = llama_config(shape)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device_scope(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)

    if getattr(model.config, "_attn_implementation", None) != "sdpa" and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("sdpa")
    attn = getattr(model.config, "_attn_implementation", None)
    if attn != "sdpa":
        raise RuntimeError(f"attention implementation is {attn!r}, not sdpa")

    if config.tie_word_embeddings:  # HF ties in post_init; make sure, as the parameter count below assumes it
        embed, head = model.get_input_embeddings(), model.get_output_embeddings()
        if head.weight is not embed.weight:
            try:
                model.tie_weights()
            except Exception as e:  # noqa: BLE001 - tied by hand below
                log(f"tie_weights() failed ({e}); tying the classifier to the embedding by hand")
        if head.weight is not embed.weight:
            head.weight = embed.weight

    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():  # tied embeddings appear once
            if p.dtype != dtype:
                p.data = p.data.to(dtype)
            if p.dim() == 1:
                p.fill_(1.0)
            else:
                bound = 1.0 / math.sqrt(p.shape[-1])
                p.uniform_(-bound, bound, generator=generator)
    model.requires_grad_(False)
    model.config.use_cache = False
    model.train()  # as a trainer runs it; Llama has no dropout, so this changes no arithmetic

    count = sum(p.numel() for p in model.parameters())
    expected = shapes.parameter_count(shape)
    if count != expected:
        raise RuntimeError(f"the HF model of {shape} has {count:,} parameters, ModelShapes says {expected:,}")
    return model


class Workload:
    """The step's tensors on the device: input_ids and labels (batch, seq), the intervened positions
    (batch, n) int64, and the counts."""

    def __init__(self, args, vocab, device):
        import torch

        self.batch, self.seq = args.batch, args.seq
        self.prompt_len = args.seq // 2
        tokens = synthetic_tokens(args.batch, args.seq, vocab, args.seed)
        self.input_ids = torch.tensor(tokens, dtype=torch.long, device=device)
        self.labels = self.input_ids.clone()
        self.labels[:, : self.prompt_len] = -100
        self.positions_list = prompt_positions(args.first, args.last, self.prompt_len)
        self.positions = torch.tensor([self.positions_list] * args.batch, dtype=torch.long, device=device)
        self.targets = args.batch * (args.seq - self.prompt_len)


def _is_oom(error):
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(error, oom):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and (
        "out of memory" in text.lower() or "CUBLAS_STATUS_ALLOC_FAILED" in text)


def emit(result):
    """The result, as the last line of stdout."""
    print(json.dumps(result), flush=True)


def run(peer, args, attach):
    """Builds the model and the workload, lets `attach(model, args, work)` add the peer's trainable part
    (returning (loss_fn, trainable_params, info)), then warms up, times and prints the JSON line.
    Exit code 0, or 3 on out-of-memory (the JSON line then has "error": "OOM")."""
    import torch

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    dtype = getattr(torch, args.dtype)
    head = {"peer": peer, "shape": args.shape, "batch": args.batch, "seq": args.seq, "rank": args.rank,
            "positions": args.positions, "device": str(device)}
    if cuda:
        head["gpu"] = torch.cuda.get_device_name(device)
    try:
        clock = time.perf_counter()
        model = build_model(args.shape, device, dtype)
        head["attn_implementation"] = model.config._attn_implementation
        work = Workload(args, model.config.vocab_size, device)
        torch.manual_seed(args.seed)
        loss_fn, params, info = attach(model, args, work)
        if cuda:
            torch.cuda.synchronize(device)
        load_s = time.perf_counter() - clock
        trainable = sum(p.numel() for p in params)
        log(f"{peer}: {args.shape} ({shapes.parameter_count(args.shape):,} parameters, random {args.dtype} weights "
            f"made in {load_s:.1f} s), batch {args.batch} x seq {args.seq}, {trainable:,} trainable, "
            f"positions {work.positions_list}; {head.get('gpu', str(device))}")

        optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            if cuda:
                torch.cuda.synchronize(device)
            return loss

        for _ in range(args.warmup):
            step()
        if args.warmup > 0:
            missing = sum(1 for p in params if p.grad is None)
            if missing:
                raise RuntimeError(f"{missing} of {len(params)} trainable tensors got no gradient: the peer is not wired in")
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
            start_event = torch.cuda.Event(enable_timing=True)
            end_event = torch.cuda.Event(enable_timing=True)
            start_event.record()
        times = []
        for i in range(args.steps):
            t0 = time.perf_counter()
            loss = step()
            times.append((time.perf_counter() - t0) * 1000.0)
            log(f"step {i + 1}/{args.steps}: {times[-1]:.1f} ms")
        device_ms = None
        if cuda:
            end_event.record()
            torch.cuda.synchronize(device)
            device_ms = start_event.elapsed_time(end_event)
            peak = torch.cuda.max_memory_allocated(device)
            reserved = torch.cuda.max_memory_reserved(device)
            peak_kind = "torch.cuda.max_memory_allocated"
        else:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
            reserved = None
            peak_kind = "process max RSS"
        loss_value = float(loss.detach().float().cpu())
    except Exception as e:  # noqa: BLE001 - OOM becomes a result, anything else a traceback
        if not _is_oom(e):
            raise
        emit({**head, "error": "OOM", "message": str(e).splitlines()[0][:300], **_versions()})
        log(f"{peer}: OOM at batch {args.batch} ({str(e).splitlines()[0][:200]})")
        return 3

    tokens = args.batch * args.seq
    ordered = sorted(times)
    median_ms = ordered[len(ordered) // 2]  # as BenchCommand: times[timed / 2] of the sorted times
    result = {
        **head,
        "tokens_per_s": round(tokens * args.steps / (sum(times) / 1000.0), 1),
        "tokens_per_s_median": round(tokens / (median_ms / 1000.0), 1),
        "step_ms": round(median_ms, 2),
        "step_ms_mean": round(sum(times) / len(times), 2),
        "step_ms_min": round(ordered[0], 2),
        "step_ms_max": round(ordered[-1], 2),
        "device_ms_per_step": None if device_ms is None else round(device_ms / args.steps, 2),
        "peak_gib": round(peak / 2**30, 3),
        "peak_reserved_gib": None if reserved is None else round(reserved / 2**30, 3),
        "peak_kind": peak_kind,
        "trainable_params": trainable,
        "steps": args.steps,
        "warmup": args.warmup,
        "dtype": args.dtype,
        "loss": round(loss_value, 4),
        "load_s": round(load_s, 1),
        **info,
        **_versions(),
    }
    log(f"{peer}: step {median_ms:.1f} ms (median of {args.steps}), {result['tokens_per_s']:,.0f} tokens/s "
        f"(mean), peak {result['peak_gib']:.2f} GiB")
    emit(result)
    return 0


def main(peer, description, attach, add_arguments=None):
    args = parse_args(peer, description, add_arguments)
    if os.environ.get("PYTORCH_CUDA_ALLOC_CONF"):
        log(f"PYTORCH_CUDA_ALLOC_CONF={os.environ['PYTORCH_CUDA_ALLOC_CONF']}")
    sys.exit(run(peer, args, attach))
