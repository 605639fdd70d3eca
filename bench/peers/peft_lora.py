"""Peer (a): PEFT LoRA on the random-weight HF Llama, timed on the workload of `nativereft bench train`.

LoRA r=8 (--rank), alpha 16, dropout 0, no bias, on q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj and
down_proj of every layer, through peft.get_peft_model with its defaults (so the adapter weights are upcast to
float32, PEFT's autocast_adapter_dtype=True, and the bf16 input is cast to float32 on the adapter path). The
base model is frozen; the loss is HF's own (labels -100 on the prompt).

    python3 bench/peers/peft_lora.py --shape llama2-7b --seq 512 --batch 8
    python3 bench/peers/peft_lora.py --device cpu --shape stories260K --steps 2      # smoke
"""

import common

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def add_arguments(p):
    p.add_argument("--lora-alpha", type=float, default=16.0, help="LoRA alpha (scaling alpha / r)")


def attach(model, args, work):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=args.rank, lora_alpha=args.lora_alpha, lora_dropout=0.0, bias="none",
                        target_modules=list(TARGETS), task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    peft_model.train()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    wrapped = sum(1 for name, _ in peft_model.named_modules() if name.endswith(".lora_A"))
    expected = len(TARGETS) * model.config.num_hidden_layers
    if wrapped != expected:
        raise RuntimeError(f"PEFT wrapped {wrapped} linear layers, expected {expected}")

    def loss_fn():
        return peft_model(input_ids=work.input_ids, labels=work.labels, use_cache=False).loss

    info = {"lora_alpha": args.lora_alpha, "lora_targets": TARGETS, "lora_layers": wrapped,
            "adapter_dtype": str(params[0].dtype).replace("torch.", "")}
    return loss_fn, params, info


if __name__ == "__main__":
    common.main("peft_lora", "PEFT LoRA peer of nativereft bench train", attach, add_arguments)
