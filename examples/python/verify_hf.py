#!/usr/bin/env python3
"""Check the HF folder written by gguf_to_hf.py against the shipped f16 oracle.

Usage: python verify_hf.py HF_DIR SOTU_SAFETENSORS [--threads 2] [--batch 8]

Runs transformers (torch CPU, float32) over the 64 shipped SOTU sequences (64 x 256 tokens, no BOS)
and prints: next-token perplexity (reference numpy forward: 25.0), the per-token relative L2 error
||h - a|| / ||a|| of hidden_states[12] (index 0 = embedding output) against the shipped f16
activations (median, max), and the minimum per-token cosine. Writes
HF_DIR/reference_first2.safetensors (f32): `tokens` [2,256] i32, `logits_first8` [2,8,49152],
`hidden12` [2,256,576], for the Rust tests.
"""
import argparse
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hf_dir")
    ap.add_argument("sotu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    a = ap.parse_args()
    for p in (os.path.join(a.hf_dir, "config.json"), os.path.join(a.hf_dir, "model.safetensors"), a.sotu):
        if not os.path.isfile(p):
            sys.exit(f"verify_hf.py: error: not found: {p}")
    import numpy as np
    import torch
    from safetensors.numpy import load_file, save_file
    from transformers import LlamaForCausalLM

    torch.set_num_threads(a.threads)
    d = load_file(a.sotu)
    toks = d["tokens"].astype(np.int64).reshape(-1, a.seq)
    acts = d["activations"].astype(np.float32).reshape(toks.shape[0], a.seq, -1)
    model = LlamaForCausalLM.from_pretrained(a.hf_dir, dtype=torch.float32).eval()
    nll, n, rel, cos = 0.0, 0, [], []
    first2 = {}
    with torch.inference_mode():
        for s in range(0, toks.shape[0], a.batch):
            ids = torch.from_numpy(toks[s:s + a.batch])
            out = model(input_ids=ids, output_hidden_states=True, use_cache=False)
            lp = torch.log_softmax(out.logits[:, :-1].double(), -1)
            nll -= lp.gather(-1, ids[:, 1:, None]).sum().item()
            n += ids.shape[0] * (a.seq - 1)
            h = out.hidden_states[12].numpy()
            ref = acts[s:s + a.batch]
            rel.append((np.linalg.norm(h - ref, axis=-1) / np.linalg.norm(ref, axis=-1)).ravel())
            cos.append(((h * ref).sum(-1) / (np.linalg.norm(h, axis=-1) * np.linalg.norm(ref, axis=-1))).ravel())
            if s == 0:
                first2 = {"tokens": toks[:2].astype(np.int32),
                          "logits_first8": np.ascontiguousarray(out.logits[:2, :8].numpy().astype(np.float32)),
                          "hidden12": np.ascontiguousarray(h[:2].astype(np.float32))}
            print(f"  seqs {s}..{s + ids.shape[0] - 1} done", file=sys.stderr)
    rel, cos = np.concatenate(rel), np.concatenate(cos)
    pos0 = np.arange(rel.size) % a.seq == 0
    res = {"sequences": int(toks.shape[0]), "tokens": int(rel.size), "perplexity": float(np.exp(nll / n)),
           "rel_l2_median": float(np.median(rel)), "rel_l2_p99": float(np.quantile(rel, 0.99)),
           "rel_l2_max": float(rel.max()), "rel_l2_max_excl_pos0": float(rel[~pos0].max()),
           "rel_l2_pos0_max": float(rel[pos0].max()), "cos_min": float(cos.min())}
    out_path = os.path.join(a.hf_dir, "reference_first2.safetensors")
    save_file(first2, out_path, metadata={"source": "transformers LlamaForCausalLM f32 on " + a.hf_dir,
                                          "logits_first8": "logits of positions 0..7 of sequences 0,1",
                                          "hidden12": "hidden_states[12] (0 = embedding output) of sequences 0,1",
                                          "verify": json.dumps(res)})
    os.chmod(out_path, 0o644)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
