"""The jitted train step beside PyTorch (eager and torch.compile), same model, loss and optimizer.

    pip install -e ".[bench]"                        # PyTorch: a benchmark-only extra
    taskset -c 1 python benchmarks/train_step.py     # -> benchmarks/results/train_step.json

burda_1l and burda_2l, IWAE-k with Adam (k = 1 is the VAE), batch 20 and 100, k = 1, 5, 50, on
random MNIST-shaped data binarized afresh each step (the cost does not depend on pixel values).
elbo_lab: the trainer's own make_train_steps (a lax.scan over `steps` minibatches per dispatch).
PyTorch: benchmarks/torch_reference.py, the same computation (checked before timing: the same
parameters and noise give the same log weights), one intra-op thread, a Python loop of the same
`steps` updates. The three run alternated, `--rounds` times, in one process pinned to the same
core(s); each row has medians, the per-round ratios' median and range, and the fraction of the
float32 matmul rate measured in the same run.

FLOPs per step are counted by XLA (the compiled single update's cost analysis), not by hand.
Profile columns (elbo_lab only): the same step without the binarization's random numbers
(`no_binarize`: data already 0/1), with JAX's `unsafe_rbg` PRNG instead of threefry, Adam's update
alone, and the step's own matmuls alone (forward and both backward products of every dense layer
at the step's shapes: the floor this step could reach). Peak resident memory (ru_maxrss) is the
process's maximum so far when the row finished.
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from common import (
    MODELS,
    TrainStep,
    matmul_gflops,
    maxrss_mb,
    median_seconds,
    steps_per_call,
    write,
)


def adam_seconds(step: TrainStep, repeats: int) -> float:
    """Adam's update alone on the model's parameters (fixed gradients), per step."""
    opt = step.optimizer
    grads = jax.tree.map(jnp.ones_like, step.params)

    @jax.jit
    def many(params, opt_state):
        def body(carry, _):
            p, s = carry
            u, s = opt.update(grads, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(body, (params, opt_state), None, length=100)[0]

    state = (step.params, opt.init(step.params))
    jax.block_until_ready(many(*state))
    return median_seconds(lambda: jax.block_until_ready(many(*state)), repeats) / 100


def dense_shapes(step: TrainStep, batch: int, k: int) -> list[tuple[int, int, int]]:
    """(rows, in, out) of every dense layer of one step: the bottom encoder (on x) once per
    example, every other layer once per sample."""
    shapes = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(step.params)[0]:
        if getattr(path[-1], "key", None) == "kernel":
            rows = batch if getattr(path[0], "key", "") == "enc0" else batch * k
            shapes.append((rows, *leaf.shape))
    return shapes


def matmul_floor_seconds(shapes, repeats: int) -> tuple[float, float]:
    """(seconds, FLOPs) of the forward product and both backward products of every dense layer
    at these shapes, 100 times in one jitted scan; per step."""
    rng = np.random.default_rng(0)
    xs = [jnp.asarray(rng.normal(size=(r, i)), jnp.float32) for r, i, _ in shapes]
    ws = [jnp.asarray(rng.normal(size=(i, o)), jnp.float32) for _, i, o in shapes]
    gs = [jnp.asarray(rng.normal(size=(r, o)), jnp.float32) for r, _, o in shapes]

    @jax.jit
    def many(xs, ws, gs):
        def body(c, _):  # inputs moved by the carry, so XLA cannot hoist the products
            total = c
            for x, w, g in zip(xs, ws, gs, strict=True):
                x, g = x + c, g + c
                total = total + jnp.sum(x @ w) + jnp.sum(g @ w.T) + jnp.sum(x.T @ g)
            return total * 1e-30, None

        return jax.lax.scan(body, jnp.zeros(()), None, length=100)[0]

    jax.block_until_ready(many(xs, ws, gs))
    seconds = median_seconds(lambda: jax.block_until_ready(many(xs, ws, gs)), repeats) / 100
    return seconds, float(sum(3 * 2 * r * i * o for r, i, o in shapes))


def profile(name: str, batch: int, k: int, steps: int, repeats: int, base: TrainStep) -> dict:
    """Where an elbo_lab step's time goes (seconds per step)."""
    no_bin = TrainStep("iwae", {"k": k}, batch, steps, model=name, dynamic=False)
    out = {"no_binarize_ms": 1e3 * median_seconds(no_bin.go, repeats) / steps}
    jax.config.update("jax_default_prng_impl", "unsafe_rbg")
    try:
        rbg = TrainStep("iwae", {"k": k}, batch, steps, model=name)
        out["unsafe_rbg_prng_ms"] = 1e3 * median_seconds(rbg.go, repeats) / steps
    finally:
        jax.config.update("jax_default_prng_impl", "threefry2x32")
    out["adam_update_ms"] = 1e3 * adam_seconds(base, repeats)
    floor_s, floor_flops = matmul_floor_seconds(dense_shapes(base, batch, k), repeats)
    out["matmuls_alone_ms"] = 1e3 * floor_s
    out["matmuls_alone_gflops"] = floor_flops / floor_s / 1e9
    return out


def bench_cell(name: str, batch: int, k: int, args, roof: float) -> dict:
    import torch_reference as ref

    steps = steps_per_call(batch, k)
    jx = TrainStep("iwae", {"k": k}, batch, steps, model=name)
    flops = jx.flops_per_step()
    check = ref.max_log_weight_difference(jx.model, jx.params, np.asarray(jx.data))
    tstep = ref.TorchStep(jx.model, jx.params, np.asarray(jx.data), batch, k, steps)
    tcomp = ref.TorchStep(jx.model, jx.params, np.asarray(jx.data), batch, k, steps, compiled=True)
    times = {"jax": [], "torch_eager": [], "torch_compile": []}
    for _ in range(args.rounds):  # alternated: a slow spell of the machine hits all three
        times["jax"].append(median_seconds(jx.go, 1) / steps)
        times["torch_eager"].append(median_seconds(tstep.go, 1) / steps)
        times["torch_compile"].append(median_seconds(tcomp.go, 1) / steps)
    t = {key: np.asarray(v) for key, v in times.items()}
    row = {
        "model": name,
        "batch": batch,
        "k": k,
        "steps_per_call": steps,
        "rounds": args.rounds,
        "log_weight_max_abs_difference_jax_vs_torch": check,
        "xla_flops_per_step": flops,
    }
    for key, v in t.items():
        row[f"{key}_ms"] = 1e3 * float(np.median(v))
    for other in ("torch_eager", "torch_compile"):
        ratio = t[other] / t["jax"]
        row[f"speedup_vs_{other}"] = float(np.median(ratio))
        row[f"speedup_vs_{other}_range"] = [float(ratio.min()), float(ratio.max())]
    row["gflops"] = flops / (row["jax_ms"] / 1e3) / 1e9
    row["fraction_of_matmul"] = row["gflops"] / roof
    if not args.no_profile:
        row["profile"] = profile(name, batch, k, steps, 3, jx)
    row["maxrss_mb"] = maxrss_mb()
    return row


TARGETS = {
    "speedup_vs_torch_eager >= 2": lambda r: r["speedup_vs_torch_eager"] >= 2,
    "speedup_vs_torch_compile >= 2": lambda r: r["speedup_vs_torch_compile"] >= 2,
    "fraction_of_matmul >= 0.8 at k=50": lambda r: r["k"] != 50 or r["fraction_of_matmul"] >= 0.8,
    "fraction_of_matmul >= 0.5 at batch 20, k=1": lambda r: (
        (r["batch"], r["k"]) != (20, 1) or r["fraction_of_matmul"] >= 0.5
    ),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--batches", type=int, nargs="+", default=[20, 100])
    p.add_argument("--ks", type=int, nargs="+", default=[1, 5, 50])
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--out", default="train_step")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)  # one intra-op thread, as XLA's CPU client on one pinned core
    roof = matmul_gflops()
    rows = []
    for name in args.models:
        for batch in args.batches:
            for k in args.ks:
                row = bench_cell(name, batch, k, args, roof)
                row["targets"] = {t: bool(ok(row)) for t, ok in TARGETS.items()}
                rows.append(row)
                print(
                    f"{name} B={batch:3d} k={k:2d}: jax {row['jax_ms']:.3f} ms, eager "
                    f"{row['torch_eager_ms']:.3f}, compile {row['torch_compile_ms']:.3f}; "
                    f"x{row['speedup_vs_torch_eager']:.2f} / x{row['speedup_vs_torch_compile']:.2f}"
                    f"; {100 * row['fraction_of_matmul']:.0f}% of matmul; "
                    f"{row['maxrss_mb']:.0f} MB"
                )
    path = write(
        args.out,
        {
            "matmul_gflops_f32_2048": roof,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "load_average_1_5_15_min": list(os.getloadavg()),
            "objective": "iwae (k=1: the VAE), Adam(1e-3), dynamic binarization",
            "rows": rows,
            "targets_met": {t: all(r["targets"][t] for r in rows) for t in TARGETS},
        },
    )
    print(f"matmul roof {roof:.1f} GFLOP/s; wrote {path}")


if __name__ == "__main__":
    main()
