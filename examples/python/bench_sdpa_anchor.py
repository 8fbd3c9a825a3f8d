#!/usr/bin/env python3
"""torch anchor for the Rust `bench_sparse_attn`: one measurement per call, ONE JSON line on stdout.

  python bench_sdpa_anchor.py --inputs FILE.safetensors [--causal] [--threads 2] [--reps 3] [--omp-passive]

FILE holds `q` [B, H, Tq, D], `k` [B, H, Tk, D], `v` [B, H, Tk, Dv] (f32), written by the Rust bench
so both sides see the same data. Times torch.nn.functional.scaled_dot_product_attention under
torch.inference_mode() on the CPU (is_causal for a square causal problem; a decode query, Tq = 1,
attends to every key) after one untimed warm-up call. Logs go to stderr; exit 2 on bad input.
"""
import argparse
import json
import os
import platform
import sys
import time


def die(msg):
    print(f"bench_sdpa_anchor.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--inputs", required=True)
ap.add_argument("--causal", action="store_true")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--omp-passive", action="store_true")
A = ap.parse_args()
if A.threads < 1 or A.reps < 1:
    die("--threads and --reps must be >= 1")
if not os.path.isfile(A.inputs):
    die(f"--inputs: file not found: {A.inputs}")
for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = str(A.threads)
if A.omp_passive:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import torch  # noqa: E402  (after the thread variables)
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

torch.set_num_threads(A.threads)
t = load_file(A.inputs)
try:
    q, k, v = t["q"], t["k"], t["v"]
except KeyError as e:
    die(f"--inputs: missing tensor {e}")
if q.dim() != 4 or k.shape[:2] != q.shape[:2] or k.shape[2] != v.shape[2]:
    die(f"--inputs: shapes q {tuple(q.shape)} k {tuple(k.shape)} v {tuple(v.shape)} do not form one problem")
causal = A.causal and q.shape[2] == k.shape[2]


def run():
    with torch.inference_mode():
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


run()
seconds = []
for _ in range(A.reps):
    s = time.perf_counter()
    run()
    seconds.append(time.perf_counter() - s)
print(json.dumps({
    "impl": "torch.sdpa",
    "seconds": seconds,
    "causal": causal,
    "shape": {"q": list(q.shape), "k": list(k.shape), "v": list(v.shape)},
    "threads": A.threads,
    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
    "versions": {"python": platform.python_version(), "torch": torch.__version__},
    "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    "loadavg_end": list(os.getloadavg()),
}))
