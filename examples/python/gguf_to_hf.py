#!/usr/bin/env python3
"""Convert the SmolLM2-135M-Instruct GGUF into a Hugging Face Llama folder (f32).

Usage: python gguf_to_hf.py GGUF OUTDIR [TOKENIZER_JSON]

Writes OUTDIR/{model.safetensors, config.json, generation_config.json, tokenizer.json}.
Weights are dequantised with the `gguf` package and stored as float32 under standard HF
names ([out, in] for Linear weights, no lm_head: embeddings are tied). q_proj/k_proj are
UN-PERMUTED from llama.cpp's adjacent-pair RoPE order back to HF's rotate_half order:
within each head, GGUF row 2i+j = HF row j*Dh/2 + i (q: n_head heads, k: n_head_kv heads).
TOKENIZER_JSON defaults to shared/data/models/smollm2-135m-instruct/tokenizer.json.
"""
import json
import os
import shutil
import sys

import numpy as np

DEFAULT_TOKENIZER = "/work/shared/data/models/smollm2-135m-instruct/tokenizer.json"


def die(msg):
    print(f"gguf_to_hf.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def unpermute(w, n_head):
    """GGUF (adjacent-pair) row order -> HF (rotate_half) row order, per head."""
    rows, cols = w.shape
    dh = rows // n_head
    assert dh * n_head == rows and dh % 2 == 0, (w.shape, n_head)
    # GGUF index within head = 2i + j  -> view as [head, i, j]; HF index = j*dh/2 + i -> [head, j, i]
    return np.ascontiguousarray(w.reshape(n_head, dh // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols))


def main(argv):
    if len(argv) not in (3, 4):
        die("usage: gguf_to_hf.py GGUF OUTDIR [TOKENIZER_JSON]")
    src, out = argv[1], argv[2]
    tok_json = argv[3] if len(argv) == 4 else DEFAULT_TOKENIZER
    if not os.path.isfile(src):
        die(f"GGUF file not found: {src}")
    if not os.path.isfile(tok_json):
        die(f"tokenizer.json not found: {tok_json}")
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors.numpy import save_file

    r = GGUFReader(src)
    f = lambda k: r.fields[k].contents()
    arch = f("general.architecture")
    if arch != "llama":
        die(f"expected a llama GGUF, got architecture {arch!r}")
    D = int(f("llama.embedding_length"))
    L = int(f("llama.block_count"))
    H = int(f("llama.attention.head_count"))
    HKV = int(f("llama.attention.head_count_kv"))
    FF = int(f("llama.feed_forward_length"))
    eps = float(f("llama.attention.layer_norm_rms_epsilon"))
    theta = float(f("llama.rope.freq_base"))
    vocab = len(f("tokenizer.ggml.tokens"))
    ctx = int(f("llama.context_length")) if "llama.context_length" in r.fields else 8192
    dh = D // H

    per = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
           "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
           "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
           "ffn_down": "mlp.down_proj"}
    names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight"}
    T = {}
    for t in r.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        if t.name in names:
            k = names[t.name]
        elif t.name == "output.weight":
            die("GGUF has an untied output.weight; this converter assumes tied embeddings")
        else:
            _, l, kind, suffix = t.name.split(".")
            k = f"model.layers.{l}.{per[kind]}.{suffix}"
            if kind == "attn_q":
                w = unpermute(w, H)
            elif kind == "attn_k":
                w = unpermute(w, HKV)
        T[k] = np.ascontiguousarray(w)
    expect = {"model.embed_tokens.weight": (vocab, D), "model.layers.0.self_attn.q_proj.weight": (H * dh, D),
              "model.layers.0.self_attn.k_proj.weight": (HKV * dh, D), "model.layers.0.mlp.down_proj.weight": (D, FF)}
    for k, s in expect.items():
        if T[k].shape != s:
            die(f"{k}: shape {T[k].shape}, expected {s}")
    if len(T) != 2 + 9 * L:
        die(f"got {len(T)} tensors, expected {2 + 9 * L}")

    os.makedirs(out, exist_ok=True)
    save_file(T, os.path.join(out, "model.safetensors"),
              metadata={"format": "pt", "source": os.path.basename(src),
                        "note": "f32 dequantised from GGUF; q_proj/k_proj un-permuted to HF rotate_half order"})
    os.chmod(os.path.join(out, "model.safetensors"), 0o644)
    bos, eos = int(f("tokenizer.ggml.bos_token_id")), int(f("tokenizer.ggml.eos_token_id"))
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": D, "intermediate_size": FF, "num_hidden_layers": L,
        "num_attention_heads": H, "num_key_value_heads": HKV, "head_dim": dh,
        "hidden_act": "silu", "rms_norm_eps": eps, "rope_theta": theta, "rope_scaling": None,
        "max_position_embeddings": ctx, "vocab_size": vocab, "tie_word_embeddings": True,
        "attention_bias": False, "attention_dropout": 0.0, "mlp_bias": False,
        "initializer_range": 0.02, "pretraining_tp": 1, "use_cache": True,
        "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": None,
        "torch_dtype": "float32",
    }
    with open(os.path.join(out, "config.json"), "w") as fh:
        json.dump(cfg, fh, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as fh:
        json.dump({"bos_token_id": bos, "eos_token_id": eos, "do_sample": False}, fh, indent=2)
    shutil.copyfile(tok_json, os.path.join(out, "tokenizer.json"))
    print(f"{len(T)} tensors (f32) -> {out}; D={D} L={L} H={H} HKV={HKV} FF={FF} eps={eps} theta={theta} "
          f"vocab={vocab} ctx={ctx} bos={bos} eos={eos}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
