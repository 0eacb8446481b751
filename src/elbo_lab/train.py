"""The one trainer: a jitted, donated update, scanned over many minibatches per dispatch.

Keys: run_key = key(seed) splits into named streams by fold_in; the update at global step s uses
fold_in(train_key, s), epoch e's shuffle uses fold_in(shuffle_key, e), its validation fold_in
(val_key, e). Nothing random lives in the state, so a resumed run repeats a never-killed one
exactly.
"""

from __future__ import annotations

import re
import sys
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from elbo_lab import figures, objectives, parallel, provenance, runs
from elbo_lab.checkpoint import Checkpointer
from elbo_lab.config import OptimConfig, TrainConfig, to_dict
from elbo_lab.data import Splits
from elbo_lab.diagnostics import gradient_snr
from elbo_lab.errors import ConfigError, UserError
from elbo_lab.estimators import Ladder
from elbo_lab.logging import RunLogger, Silent


class TrainState(NamedTuple):
    params: Any
    opt_state: Any
    obj_state: Any  # the objective's own state (empty for elbo/iwae)
    step: jax.Array  # int32 global step


def schedule(cfg: OptimConfig) -> tuple[list[int], list[float]]:
    """(epochs per stage, learning rate per stage). adam: one stage at lr; burda: the IWAE
    paper's 8 stages, stage i running 3^i epochs at lr * 10^(-i/7) (scaled by epoch_scale)."""
    if cfg.name == "adam":
        return [int(cfg.epochs)], [cfg.lr]
    epochs = [max(1, round(cfg.epoch_scale * 3**i)) for i in range(cfg.stages)]
    return epochs, [cfg.lr * 10 ** (-i / 7) for i in range(cfg.stages)]


def learning_rate(cfg: OptimConfig, steps_per_epoch: int) -> optax.Schedule:
    """The stage-wise learning rate of `schedule` as a function of the step."""
    epochs, lrs = schedule(cfg)
    boundaries = np.cumsum(epochs)[:-1] * steps_per_epoch
    return optax.piecewise_constant_schedule(
        lrs[0], {int(b): lrs[i + 1] / lrs[i] for i, b in enumerate(boundaries)}
    )


def make_optimizer(cfg: OptimConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    lr = learning_rate(cfg, steps_per_epoch)
    return optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)


def make_train_steps(objective: objectives.Objective, optimizer, *, dynamic: bool):
    """A jitted fn(state, data [N, X], idx [S, B], train_key) -> (state, metrics).

    Runs S updates in one lax.scan; minibatch i is data[idx[i]], binarized afresh when `dynamic`.
    `metrics` are the means over the S updates. The state's buffers are donated. Under
    parallel.data_parallel, each minibatch is split over the devices (state and data replicated).
    """

    def update(state: TrainState, x_probs: jax.Array, key: jax.Array):
        x_probs = parallel.constrain(x_probs)
        k_bin, k_obj = jax.random.split(key)
        x = jax.random.bernoulli(k_bin, x_probs).astype(jnp.float32) if dynamic else x_probs
        grad_fn = jax.value_and_grad(objective.loss, has_aux=True)
        (_, (metrics, obj_state)), grads = grad_fn(state.params, state.obj_state, k_obj, x)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {**metrics, "grad_norm": optax.tree.norm(grads)}
        return TrainState(params, opt_state, obj_state, state.step + 1), metrics

    @partial(jax.jit, donate_argnums=0)
    def train_steps(state, data, idx, train_key):
        def body(state, batch_idx):
            return update(state, data[batch_idx], jax.random.fold_in(train_key, state.step))

        state, metrics = jax.lax.scan(body, state, idx)
        return state, jax.tree.map(jnp.mean, metrics)

    return train_steps


def build(cfg: TrainConfig, splits: Splits):
    """(model, objective, optimizer, steps per epoch) for a config and its data."""
    model = runs.build_model(cfg, splits.event_shape)
    objective = cfg.objective.build(model)
    steps_per_epoch = splits.train.shape[0] // cfg.batch_size
    if steps_per_epoch < 1:
        raise ConfigError(
            f"batch_size={cfg.batch_size} exceeds the {splits.train.shape[0]} training examples "
            f"of {splits.source}: use batch_size <= {splits.train.shape[0]}"
        )
    return model, objective, make_optimizer(cfg.optim, steps_per_epoch), steps_per_epoch


def load_data(cfg: TrainConfig) -> Splits:
    """The config's data, checked against its likelihood (e.g. 0/1 values for Bernoulli; a
    dynamically binarized train split holds the means, which the data layer checked)."""
    splits = cfg.data.build()
    likelihood = cfg.likelihood.build()
    for name in ("valid", "test") if splits.dynamic else ("train", "valid", "test"):
        likelihood.check_data(getattr(splits, name), f"{splits.source}: {name}")
    return splits


def init_state(cfg: TrainConfig, model, objective, optimizer, splits) -> TrainState:
    x_mean = splits.train.mean(0)

    @jax.jit  # one compiled call instead of hundreds of small eager ones (seconds on this CPU)
    def init(key):
        params = model.init(key, x_mean)
        return TrainState(
            params, optimizer.init(params), objective.init(), jnp.zeros((), jnp.int32)
        )

    return init(jax.random.fold_in(jax.random.key(cfg.seed), 0))


def run(cfg: TrainConfig, run_dir: str | Path) -> dict:
    """Train (or resume) the run in `run_dir`, evaluate it, and return the final summary.

    Writes config.json, provenance.json, metrics.jsonl, checkpoints/, figures/, results.json,
    test_per_example.npz and, last, done.json. A finished run returns its stored results without
    any work, unless it was finished by other code (see serve_finished). A stored config that
    differs from `cfg` in a key that changes results stops the run with the difference, unless
    cfg.allow_changes (the change is then recorded in provenance.json). A run whose last
    checkpoint is the final epoch only re-runs the test evaluation (bit-identical: its key
    derives from the seed).
    """
    run_dir = Path(run_dir)
    changes = config_changes(cfg, run_dir)
    if runs.is_finished(run_dir):
        return serve_finished(cfg, run_dir, changes)
    if cfg.distributed:
        parallel.initialize_distributed()  # each process uses the devices its host has
    else:
        parallel.request_cpu_devices(cfg.devices)
    splits = load_data(cfg)  # before anything is written: bad data leaves no run folder behind
    if not parallel.is_writer():  # another host's process of a multi-host run: it computes
        with parallel.data_parallel(cfg.devices):
            return train_and_test(cfg, run_dir, splits, {})
    with runs.RunLock(run_dir), parallel.data_parallel(cfg.devices):
        prov = runs.Provenance(run_dir)
        if changes:
            prov.record_change("resumed with a changed config (allow_changes=true)", changes)
        session = prov.start()
        try:
            results = train_and_test(cfg, run_dir, splits, session)
        except BaseException as e:
            prov.end(session, "stopped")
            if is_out_of_memory(e):
                raise out_of_memory(cfg, e) from None
            raise
        prov.end(session, "finished")
        runs.write_json(run_dir / runs.DONE_FILE, {"epochs": results["epochs"]})
        return results


def config_changes(cfg: TrainConfig, run_dir: Path) -> list[str]:
    """The differences between the run folder's stored config and `cfg` (runs.NOT_COMPARED
    left out); a ConfigError saying how to proceed if there are any and they are not allowed."""
    if not (run_dir / runs.CONFIG_FILE).is_file():
        return []
    changes = runs.config_differences(to_dict(runs.load_config(run_dir)), to_dict(cfg))
    if changes and not cfg.allow_changes:
        raise ConfigError(
            f"{run_dir} holds a run with another config:\n  "
            + "\n  ".join(changes)
            + "\nTo keep both, run this config under a new name (name=... or out_root=...); to "
            "continue this run with the new settings anyway, add allow_changes=true (the change "
            "is recorded in its provenance.json)."
        )
    return changes


def serve_finished(cfg: TrainConfig, run_dir: Path, changes: list[str]) -> dict:
    """The stored results of a finished run, if the code that finished it is today's code
    (provenance.code_hash) or the user allows the difference."""
    prov = runs.Provenance(run_dir)
    finished, now = prov.finished_by(), provenance.code_version()
    if finished is None:
        warnings.warn(
            f"{run_dir} was finished before runs recorded their code version; its stored "
            "results are returned as they are",
            stacklevel=2,
        )
    elif finished["code_hash"] != now["code_hash"]:
        if not cfg.allow_changes:
            raise ConfigError(
                f"{run_dir} was finished by other code (code_hash {finished['code_hash'][:12]}, "
                f"git commit {finished.get('git_commit', 'unknown')}); the code is now "
                f"{now['code_hash'][:12]}. Its results may not be what today's code computes: "
                "run under a new name to recompute them, or add allow_changes=true to get the "
                "stored results anyway (recorded in its provenance.json)."
            )
        changes = [*changes, f"code_hash: {finished['code_hash']} -> {now['code_hash']}"]
    if changes:
        prov.record_change("finished results re-served (allow_changes=true)", changes)
    return runs.read_results(run_dir)


def is_out_of_memory(e: BaseException) -> bool:
    return isinstance(e, jax.errors.JaxRuntimeError) and "RESOURCE_EXHAUSTED" in str(e)


def out_of_memory(cfg: TrainConfig, e: BaseException) -> UserError:
    """XLA's RESOURCE_EXHAUSTED as a message naming the settings that set the memory."""
    found = re.search(r"allocat\w* (\d+) bytes", str(e))
    need = f" (XLA asked for {int(found.group(1)) / 2**30:.1f} GiB at once)" if found else ""
    k = getattr(cfg.objective, "k", 1)
    return UserError(
        f"out of memory{need}: a train step holds batch_size x objective.k = {cfg.batch_size} x "
        f"{k} = {cfg.batch_size * k:,} samples of the model at once, and validation and test "
        f"evaluate eval.rows_per_chunk = {cfg.eval.rows_per_chunk:,} rows per chunk. Lower "
        "objective.k or batch_size (or eval.rows_per_chunk if the train steps ran); the run is "
        "not finished, and its last checkpoint is kept, so the same command resumes it."
    )


class Diverged(UserError):
    """Training produced a non-finite loss or gradient."""


def train_and_test(cfg: TrainConfig, run_dir: Path, splits: Splits, session: dict) -> dict:
    """The training loop from the last readable checkpoint, then the test evaluation."""
    model, objective, optimizer, steps_per_epoch = build(cfg, splits)
    total_epochs = int(sum(schedule(cfg.optim)[0]))
    run_key = jax.random.key(cfg.seed)
    train_key, shuffle_key, val_key, test_key, snr_key = (
        jax.random.fold_in(run_key, i) for i in (1, 2, 3, 4, 5)
    )
    writer = parallel.is_writer()
    if writer:
        runs.save_config(run_dir, cfg)
    ckpt = Checkpointer(run_dir)
    state = parallel.replicate(init_state(cfg, model, objective, optimizer, splits))
    start_epoch = 0
    restored = ckpt.restore_latest(state)
    if restored is not None:
        start_epoch, state, _ = restored
        state = parallel.replicate(state)
        session["resumed_from_epoch"] = start_epoch  # provenance.json, when the session ends
        print(f"resuming {run_dir} from its epoch-{start_epoch} checkpoint", file=sys.stderr)
    config = {**to_dict(cfg), "provenance": session}
    resume = start_epoch or None
    logger = RunLogger.from_config(run_dir, config, cfg.logger, resume) if writer else Silent()
    try:
        epoch_fn = EpochRunner(cfg, splits, objective, optimizer, steps_per_epoch, model)
        bar = tqdm(
            total=total_epochs * steps_per_epoch,
            initial=start_epoch * steps_per_epoch,
            unit="step",
            disable=not cfg.progress,
            dynamic_ncols=True,
        )
        for epoch in range(start_epoch + 1, total_epochs + 1):
            keys = (train_key, jax.random.fold_in(shuffle_key, epoch))
            state, record = epoch_fn(state, epoch, keys, bar, last_good=start_epoch)
            if cfg.eval.val_every and epoch % cfg.eval.val_every == 0:
                record.update(epoch_fn.validate(state, jax.random.fold_in(val_key, epoch)))
            if cfg.eval.snr_every and epoch % cfg.eval.snr_every == 0:
                record.update(epoch_fn.snr(state, jax.random.fold_in(snr_key, epoch)))
            record.update(health(record))
            logger.log(record)
            if epoch % cfg.checkpoint_every == 0 or epoch == total_epochs:
                ckpt.save(epoch, state, {"epoch": epoch, "step": record["step"]})
                start_epoch = epoch
        bar.close()
        step = int(parallel.to_host(state.step))
        results = {"epochs": total_epochs, "steps": step}
        if cfg.eval.test:
            results.update(
                test_evaluation(cfg, model, state.params, splits, test_key, logger, step)
            )
        logger.summary(results)
        return results
    finally:
        logger.close()
        ckpt.close()


ACCEPT_RANGE = (0.05, 0.99)  # an MCMC acceptance rate outside it for a whole epoch is a warning


def health(record: dict) -> dict:
    """Warnings about an epoch that trained but may not have trained well: an MCMC acceptance
    rate (metric "accept", e.g. objective=hmc) below 0.05 (the chains barely move: the step size
    is too large) or above 0.99 (too small to explore). Printed, and logged as health/* = 1."""
    accept = record.get("train/accept")
    if accept is None or ACCEPT_RANGE[0] <= accept <= ACCEPT_RANGE[1]:
        return {}
    low = accept < ACCEPT_RANGE[0]
    warnings.warn(
        f"epoch {record['epoch']}: mean HMC acceptance {accept:.3f} is "
        f"{'below' if low else 'above'} {ACCEPT_RANGE[0 if low else 1]}: the step size is too "
        f"{'large' if low else 'small'} (objective.step_size, objective.target_accept)",
        stacklevel=2,
    )
    return {"health/accept_out_of_range": 1}


class EpochRunner:
    """One epoch of jitted, scanned updates (and the validation ladder), compiled once."""

    def __init__(self, cfg, splits, objective, optimizer, steps_per_epoch, model):
        self.cfg, self.splits, self.steps_per_epoch = cfg, splits, steps_per_epoch
        self.train_data = parallel.replicate(jnp.asarray(splits.train))
        self.train_steps = make_train_steps(objective, optimizer, dynamic=splits.dynamic)
        self.lr_at = learning_rate(cfg.optim, steps_per_epoch)
        self.val_ladder = Ladder(model, cfg.eval.val_ks, cfg.eval.rows_per_chunk)
        self.encoder_keys = model.encoder_keys
        self.objective_grad = objectives.gradient_fn(objective)
        # Minibatches per dispatch: the largest divisor of the epoch not above steps_per_dispatch,
        # so every dispatch has one shape and compiles once.
        self.spd = max(
            d
            for d in range(1, min(cfg.steps_per_dispatch, steps_per_epoch) + 1)
            if steps_per_epoch % d == 0
        )

    def __call__(self, state, epoch: int, keys, bar, last_good: int):
        """(state, record) after epoch `epoch`; Diverged at the first non-finite loss or
        gradient norm (the checkpoint of `last_good` is the last one written)."""
        train_key, shuffle_key = keys
        b, n_train = self.cfg.batch_size, self.splits.train.shape[0]
        perm = np.asarray(jax.random.permutation(shuffle_key, n_train))
        idx = perm[: self.steps_per_epoch * b].reshape(self.steps_per_epoch, b)
        t0, sums, weight = time.perf_counter(), {}, 0
        for s in range(0, self.steps_per_epoch, self.spd):
            chunk = idx[s : s + self.spd]
            chunk = parallel.shard(jnp.asarray(chunk), axis=1)
            state, metrics = self.train_steps(state, self.train_data, chunk, train_key)
            metrics = parallel.to_host(metrics)
            self.check_finite(metrics, epoch, last_good)
            n = len(chunk)
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n
            weight += n
            bar.update(n)
            rate = weight * b / (time.perf_counter() - t0)
            bar.set_postfix(epoch=epoch, loss=f"{float(metrics['loss']):.2f}", ex_s=f"{rate:.0f}")
        seconds = time.perf_counter() - t0
        step = int(parallel.to_host(state.step))
        record = {"epoch": epoch, "step": step, "lr": float(self.lr_at(step - 1))}
        record.update({f"train/{k}": v / weight for k, v in sums.items()})
        record["train/seconds_per_epoch"] = seconds
        record["train/examples_per_s"] = self.steps_per_epoch * b / seconds
        return state, record

    def check_finite(self, metrics: dict, epoch: int, last_good: int) -> None:
        bad = [k for k in ("loss", "grad_norm") if not np.isfinite(metrics[k])]
        if bad:
            raise Diverged(
                f"training diverged in epoch {epoch}: {bad[0]} is {float(metrics[bad[0]])}. The "
                f"run is not finished; its last checkpoint (epoch {last_good or 'none'}) is kept. "
                f"Likely causes: a learning rate too large (optim.lr={self.cfg.optim.lr}), or for "
                "objective=hmc a step size too large (objective.step_size); run the lowered "
                "setting under a new name"
            )

    def snr(self, state, key) -> dict:
        """snr/<encoder|decoder>/<statistic>: diagnostics.gradient_snr of the objective at the
        state's parameters, on the first eval.snr_examples training examples."""
        k_bin, k_grads = jax.random.split(key)
        x = self.train_data[: self.cfg.eval.snr_examples]
        if self.splits.dynamic:
            x = jax.random.bernoulli(k_bin, x).astype(jnp.float32)
        keys = jax.random.split(k_grads, self.cfg.eval.snr_repeats)
        found = gradient_snr(
            self.objective_grad, state.params, keys, self.encoder_keys, state.obj_state, x
        )
        return {f"snr/{half}/{k}": v for half, s in found.items() for k, v in s.items()}

    def validate(self, state, key) -> dict:
        summary, _ = self.val_ladder(
            state.params, self.splits.valid, key, desc="valid", progress=self.cfg.progress
        )
        return {f"val/{k}": v for k, v in summary.items()}


def test_evaluation(cfg: TrainConfig, model, params, splits, key, logger: RunLogger, step: int):
    """The full ladder on the test split (log p(x) = IWAE with the largest K; the objective's
    own k added when it divides it), the figures and each test image's log p(x) (float32; for
    paired comparisons between runs)."""
    k_train = getattr(cfg.objective, "k", None)
    extra = {k_train} if k_train and max(cfg.eval.ks) % k_train == 0 else set()
    ks = sorted(set(cfg.eval.ks) | extra)
    x = splits.test if cfg.eval.test_examples is None else splits.test[: cfg.eval.test_examples]
    ladder = Ladder(model, ks, cfg.eval.rows_per_chunk)
    summary, per = ladder(params, x, key, desc="test", progress=cfg.progress)
    logger.per_example(log_px=per[f"iwae_{int(summary['k_max'])}"].astype(np.float32))
    results = {f"test/{k}": v for k, v in summary.items()}
    logger.log({"step": step, **results})  # no "epoch": a resumed run writes it again
    if cfg.eval.figures and parallel.is_writer():  # on this process alone: host parameters
        key_fig, params = jax.random.fold_in(key, 1), parallel.to_host(params)
        figs = figures.run_figures(model, params, x, summary, ks, key_fig, splits.event_shape)
        logger.figures(figs, step=step)
    return results
