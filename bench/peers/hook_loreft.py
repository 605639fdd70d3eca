"""Peer (b): LoReFT the way pyreft runs it, without pyreft: a forward hook on every LlamaDecoderLayer edits the
layer's output hidden states (pyreft's "block_output") at the intervened prompt positions.

The intervention follows pyreft's LoreftIntervention (pyreft/interventions.py):

    Phi(h) = h + R^T (W h + b - R h)

  * R is the (d, r) weight of a rotate layer computing x @ R, created float32 (torch's default dtype, as
    pyreft's LowRankRotateLayer is), initialised by nn.init.orthogonal_ and kept orthonormal by
    torch.nn.utils.parametrizations.orthogonal with its defaults: for a tall (d, r) matrix that is the
    "householder" map with use_trivialization=True, i.e. a (d, d) float32 `base` buffer per intervention and
    base @ householder_product(...) recomputed at every access of the weight;
  * W h + b is nn.Linear(d, r) with bias, in bf16 (pyreft casts learned_source to kwargs["dtype"], bfloat16
    unless told otherwise);
  * the edit is computed as in pyreft's forward: rotate_layer(h) (h cast to float32), then
    (learned_source(h) - that) @ rotate_layer.weight.T (a second evaluation of the parametrization), the sum
    taken in float32 and cast back to the hidden dtype, then dropout (0 here, as in the NativeReft bench);
  * one intervention per layer shared by the first and last positions (pyreft's share_weights, NativeReft's
    tied default), at every layer, rank 8.

The hook gathers the (batch, 14, d) rows, applies Phi and writes them back with an out-of-place scatter, so no
tensor autograd saved is modified in place. The base model is frozen: backward computes activation gradients
down to layer 0 and weight gradients only for the interventions, as NativeReft's step does.

What pyreft adds and this peer leaves out (so the peer is, if anything, faster than pyreft): pyvene's
IntervenableModel bookkeeping (hooks resolved per call, unit-location tensors built from Python lists each
step), ReftTrainer and HF Trainer's loop, and its data collator.

    python3 bench/peers/hook_loreft.py --shape llama2-7b --seq 512 --batch 8
    python3 bench/peers/hook_loreft.py --device cpu --shape stories260K --steps 2      # smoke
"""

import common


def add_arguments(p):
    p.add_argument("--dropout", type=float, default=0.0, help="dropout on the edited rows (pyreft's dropout)")
    p.add_argument("--rotate-dtype", default="float32", choices=["float32", "bfloat16"],
                   help="dtype of R (pyreft: float32, torch's default dtype)")
    p.add_argument("--source-dtype", default="bfloat16", choices=["bfloat16", "float32"],
                   help="dtype of W and b (pyreft: its dtype kwarg, bfloat16 by default)")


def make_intervention(dim, rank, rotate_dtype, source_dtype, dropout):
    import torch
    from torch import nn
    from torch.nn.utils.parametrizations import orthogonal

    class Rotate(nn.Module):
        """x -> x @ R with R (dim, rank): columns orthonormal once parametrized."""

        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.empty(dim, rank, dtype=rotate_dtype))
            nn.init.orthogonal_(self.weight)

        def forward(self, x):
            return torch.matmul(x.to(self.weight.dtype), self.weight)

    class LoReFT(nn.Module):
        def __init__(self):
            super().__init__()
            self.rotate_layer = orthogonal(Rotate())
            self.learned_source = nn.Linear(dim, rank, bias=True, dtype=source_dtype)
            self.dropout = nn.Dropout(dropout)

        def forward(self, h):
            source = self.learned_source(h.to(self.learned_source.weight.dtype))
            low_rank = source - self.rotate_layer(h)  # (..., rank), promoted to R's dtype
            edited = h + torch.matmul(low_rank, self.rotate_layer.weight.T)
            return self.dropout(edited.to(h.dtype))

    return LoReFT()


def attach(model, args, work):
    import torch
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    layers = [m for m in model.modules() if isinstance(m, LlamaDecoderLayer)]
    if len(layers) != model.config.num_hidden_layers:
        raise RuntimeError(f"found {len(layers)} decoder layers, the config has {model.config.num_hidden_layers}")
    device = work.input_ids.device
    dim = model.config.hidden_size
    with common.device_scope(device):
        interventions = torch.nn.ModuleList(
            make_intervention(dim, args.rank, getattr(torch, args.rotate_dtype), getattr(torch, args.source_dtype),
                              args.dropout)
            for _ in layers)
    interventions.train()
    for phi in interventions:
        r = phi.rotate_layer.weight.detach().float()
        error = (r.T @ r - torch.eye(args.rank, device=device)).abs().max().item()
        if error > 1e-3:
            raise RuntimeError(f"R is not orthonormal after parametrization (max |R^T R - I| = {error:.2e})")

    index = work.positions.unsqueeze(-1).expand(-1, -1, dim).contiguous()  # (batch, n, d), used at every layer
    calls = [0]

    def hook_for(phi):
        def hook(module, inputs, output):
            hidden = output[0] if isinstance(output, tuple) else output
            calls[0] += 1
            rows = torch.gather(hidden, 1, index)
            edited = hidden.scatter(1, index, phi(rows))
            return (edited,) + tuple(output[1:]) if isinstance(output, tuple) else edited
        return hook

    handles = [layer.register_forward_hook(hook_for(phi)) for layer, phi in zip(layers, interventions)]
    checked = [False]

    def loss_fn():
        calls[0] = 0
        loss = model(input_ids=work.input_ids, labels=work.labels, use_cache=False).loss
        if not checked[0]:
            if calls[0] != len(layers):
                raise RuntimeError(f"the hooks ran {calls[0]} times in a forward pass, expected {len(layers)}")
            checked[0] = True
        return loss

    params = [p for p in interventions.parameters() if p.requires_grad]
    parametrization = interventions[0].rotate_layer.parametrizations.weight[0]
    base_buffers = sum(b.numel() * b.element_size() for b in interventions.buffers())
    info = {
        "interventions": len(handles),
        "tied": True,
        "orthogonal_map": getattr(getattr(parametrization, "orthogonal_map", None), "name", "?"),
        "trivialization": hasattr(parametrization, "base"),
        "rotate_dtype": args.rotate_dtype,
        "source_dtype": args.source_dtype,
        "dropout": args.dropout,
        "parametrization_buffers_gib": round(base_buffers / 2**30, 3),
    }
    return loss_fn, params, info


if __name__ == "__main__":
    common.main("hook_loreft", "LoReFT-through-forward-hooks peer of nativereft bench train", attach, add_arguments)
