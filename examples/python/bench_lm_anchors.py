#!/usr/bin/env python3
"""Python anchors for the Rust `bench_lm` benchmark: one measurement per call, ONE JSON line on stdout.

  python bench_lm_anchors.py --impl {transformers,numpy} --task {prefill,extract12,decode_cache,decode_nocache}
      [--batch 8] [--seq 256] [--threads 2] [--reps 3] [--hf /work/hf-smollm2] [--gguf GGUF] [--tokens SOTU]
      [--new-tokens 512] [--prompt-len 16] [--nocache-steps 32] [--omp-passive] [--acts-script smollm2_acts.py]

Inputs are the shipped SOTU token ids (64 x 256, no BOS): row b of the batch is the token stream starting
at shipped sequence b, cut to --seq (a --seq above 256, or a decode context, reads on into the following
sequences, which continue the same text). See README.md for what each task times. Logs go to stderr.
"""
import argparse
import os
import sys
import time

DEF_GGUF = "/work/shared/data/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
DEF_TOKENS = "/work/shared/data/smollm2-sotu/smollm2-135m-layer12.safetensors"
DEF_ACTS = "/work/shared/tools/real-data/smollm2_acts.py"
EXTRACT_LAYER = 12


def log(*a):
    print("[bench_lm_anchors]", *a, file=sys.stderr, flush=True)


def die(msg):
    print(f"bench_lm_anchors.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", required=True, choices=["transformers", "numpy"])
    ap.add_argument("--task", required=True, choices=["prefill", "extract12", "decode_cache", "decode_nocache"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--hf", default="/work/hf-smollm2", help="HF folder from gguf_to_hf.py (transformers)")
    ap.add_argument("--gguf", default=DEF_GGUF, help="GGUF file (numpy)")
    ap.add_argument("--tokens", default=DEF_TOKENS, help="safetensors with `tokens` [N] i32")
    ap.add_argument("--new-tokens", type=int, default=512, help="decode: generated tokens per row")
    ap.add_argument("--prompt-len", type=int, default=16, help="decode: prompt tokens per row")
    ap.add_argument("--nocache-steps", type=int, default=32,
                    help="decode_nocache: number of timed steps, at context lengths spread evenly over the run")
    ap.add_argument("--omp-passive", action="store_true",
                    help="set OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep instead of spinning; "
                         "much faster on a machine loaded by other processes, default: library default)")
    ap.add_argument("--acts-script", default=DEF_ACTS, help="numpy reference forward (imported, not copied)")
    a = ap.parse_args()
    if a.impl == "numpy" and a.task not in ("prefill", "extract12"):
        die("--impl numpy supports --task prefill and extract12 only")
    for name in ("batch", "seq", "threads", "reps", "new_tokens", "prompt_len", "nocache_steps"):
        if getattr(a, name) < 1:
            die(f"--{name.replace('_', '-')} must be >= 1")
    need = [("--tokens", a.tokens)]
    if a.impl == "transformers":
        need += [("--hf", os.path.join(a.hf, "config.json")), ("--hf", os.path.join(a.hf, "model.safetensors"))]
    else:
        need += [("--gguf", a.gguf), ("--acts-script", a.acts_script)]
    for flag, p in need:
        if not os.path.isfile(p):
            die(f"{flag}: file not found: {p}")
    return a


A = parse()
# Thread counts and BLAS environment must be set before numpy / torch load their libraries.
for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[v] = str(A.threads)
if A.omp_passive:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
OMP_WAIT = os.environ.get("OMP_WAIT_POLICY", "default")
UNSET = []
if A.impl == "numpy":  # this process only: these pin an old OpenBLAS kernel and slow a current numpy
    for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if v in os.environ:
            UNSET.append(f"{v}={os.environ.pop(v)}")

import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402

import numpy as np  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402


def versions():
    from importlib.metadata import version, PackageNotFoundError
    v = {"python": platform.python_version()}
    for p in ("numpy", "torch", "transformers", "gguf", "tokenizers", "safetensors", "threadpoolctl"):
        try:
            v[p] = version(p)
        except PackageNotFoundError:
            pass
    return v


def machine():
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except Exception:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "loadavg_start": list(os.getloadavg())}


def blas_info():
    try:
        from threadpoolctl import threadpool_info
        return [{k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
                for d in threadpool_info()]
    except ImportError:
        return "threadpoolctl not installed"


def token_rows(path, batch, length):
    d = load_file(path)
    if "tokens" not in d:
        die(f"{path}: no `tokens` tensor")
    flat = d["tokens"].astype(np.int64)
    starts = np.arange(batch) * 256
    idx = (starts[:, None] + np.arange(length)[None, :]) % flat.size
    return flat[idx]


def time_reps(fn, reps):
    fn(warm=True)
    secs = []
    for r in range(reps):
        t0 = time.perf_counter()
        fn(warm=False)
        secs.append(time.perf_counter() - t0)
        log(f"rep {r}: {secs[-1]:.3f} s")
    return secs


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2]


def run_numpy(a, extra):
    from threadpoolctl import threadpool_limits
    rows = token_rows(a.tokens, a.batch, a.seq)
    spec = importlib.util.spec_from_file_location("smollm2_acts", a.acts_script)
    mod = importlib.util.module_from_spec(spec)
    saved = sys.argv
    sys.argv = [a.acts_script, a.gguf, "-", os.devnull]  # the script reads its args at import; "-" = no text
    t0 = time.perf_counter()
    try:
        spec.loader.exec_module(mod)  # loads and dequantises the GGUF (not timed)
    finally:
        sys.argv = saved
    log(f"numpy reference loaded in {time.perf_counter() - t0:.1f} s")
    if not hasattr(mod, "forward"):
        die(f"{a.acts_script} has no forward(seq)")
    if a.task == "extract12":
        class EmbedOnly:  # token lookup as before; the tied head becomes [D, 0] so no logits are computed
            def __init__(self, e):
                self.e, self.T = e, np.zeros((e.shape[1], 0), e.dtype)

            def __getitem__(self, i):
                return self.e[i]
        mod.W = {**mod.W, "token_embd.weight": EmbedOnly(mod.W["token_embd.weight"])}
        mod.L = EXTRACT_LAYER  # forward() loops over the module-global L blocks
        extra["method"] = ("smollm2_acts.forward with its global L=12 and the tied head replaced by a [576,0] "
                           "matrix: blocks 1..12 + one final RMSNorm, no logits")
    else:
        extra["method"] = "smollm2_acts.forward (all 30 blocks + logits), one sequence at a time"
    out = {}

    def step(warm):
        for b in range(1 if warm else a.batch):
            resid, logits = mod.forward(rows[b])
        out["last"] = resid[-1]

    with threadpool_limits(limits=a.threads):
        extra["blas"] = blas_info()
        extra["warmup"] = "one sequence"
        secs = time_reps(step, a.reps)
    return secs, a.batch * a.seq


def run_transformers(a, extra):
    import torch
    from transformers import LlamaForCausalLM
    torch.set_num_threads(a.threads)
    model = LlamaForCausalLM.from_pretrained(a.hf, dtype=torch.float32).eval()
    extra["attn_implementation"] = model.config._attn_implementation
    extra["torch_threads"] = torch.get_num_threads()
    extra["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    extra["torch_blas"] = "mkl" if torch.backends.mkl.is_available() else "other"
    extra["blas"] = blas_info()
    extra["warmup"] = "one full call"
    inf = torch.inference_mode
    if a.task in ("prefill", "extract12"):
        ids = torch.from_numpy(token_rows(a.tokens, a.batch, a.seq))
        if a.task == "prefill":
            extra["method"] = "model(input_ids, use_cache=False).logits, all positions"

            def step(warm):
                with inf():
                    model(input_ids=ids, use_cache=False).logits
        else:
            layers = model.model.layers
            model.model.layers = torch.nn.ModuleList(list(layers)[:EXTRACT_LAYER])
            got = {}
            model.model.layers[-1].register_forward_hook(
                lambda m, i, o: got.__setitem__("h", o[0] if isinstance(o, tuple) else o))
            extra["method"] = ("model.model.layers truncated to the first 12 decoder layers, model.model(input_ids, "
                               "use_cache=False), residual taken by a forward hook on layer 12 (= hidden_states[12])")

            def step(warm):
                with inf():
                    model.model(input_ids=ids, use_cache=False)
        return time_reps(step, a.reps), a.batch * a.seq
    n, p = a.new_tokens, a.prompt_len
    rows = torch.from_numpy(token_rows(a.tokens, a.batch, p + n))
    if a.task == "decode_cache":
        prompt = rows[:, :p]
        extra["method"] = (f"model.generate(prompt of {p} tokens, do_sample=False, use_cache=True, "
                           f"max_new_tokens=min_new_tokens={n}); seconds include the prompt's prefill")
        extra["warmup"] = f"generate of {min(n, 16)} tokens"

        def step(warm):
            k = min(n, 16) if warm else n
            with inf():
                g = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                   use_cache=True, max_new_tokens=k, min_new_tokens=k,
                                   pad_token_id=model.config.eos_token_id)
            assert g.shape[1] == p + k, g.shape
        return time_reps(step, a.reps), a.batch * n
    # decode_nocache: a no-cache greedy step at context c is one full forward over c tokens; we time
    # `steps` such steps at contexts spread evenly over the run's contexts p, p+1, ..., p+n-1
    steps = min(a.nocache_steps, n)
    ctxs = [p + (k * n) // steps for k in range(steps)]
    extra["method"] = (f"{steps} greedy no-cache steps (model(ctx, use_cache=False, logits_to_keep=1), argmax) at "
                       f"context lengths {ctxs[0]}..{ctxs[-1]} spread evenly over a {n}-token decode from a {p}-token "
                       f"prompt; tokens_per_s = batch*steps/seconds estimates the full run's mean rate; "
                       f"contexts are SOTU tokens (compute does not depend on the token values)")
    extra["context_lengths"] = ctxs
    extra["warmup"] = "one step at the longest context"

    def step(warm):
        with inf():
            for c in ([ctxs[-1]] if warm else ctxs):
                model(input_ids=rows[:, :c], use_cache=False, logits_to_keep=1).logits[:, -1].argmax(-1)
    secs = time_reps(step, a.reps)
    extra["seconds_full_run_estimate"] = [s * n / steps for s in secs]
    return secs, a.batch * steps


def main(a):
    extra = {"batch": a.batch, "seq": a.seq if a.task in ("prefill", "extract12") else None}
    if a.task.startswith("decode"):
        extra.update(new_tokens=a.new_tokens, prompt_len=a.prompt_len)
    if UNSET:
        extra["env_unset"] = UNSET
    mach = machine()
    secs, ntok = (run_numpy if a.impl == "numpy" else run_transformers)(a, extra)
    mach["loadavg_end"] = list(os.getloadavg())
    res = {"impl": a.impl, "task": a.task, "tokens_per_s": ntok / median(secs), "seconds": secs,
           "threads": a.threads, "omp_wait_policy": OMP_WAIT, "versions": versions(), "tokens_per_rep": ntok, "reps": a.reps,
           "rate_rule": "tokens_per_rep / median(seconds) (upper middle for even reps)", "machine": mach, **extra}
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main(A)
