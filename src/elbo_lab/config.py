"""Typed schemas for every config group, and the one place a DictConfig becomes a dataclass.

Hydra composes the YAML groups under configs/; `to_train_config` merges the result into these
schemas (unknown keys and wrong types stop there) and then checks values that types cannot
express (k > 0, a positive learning rate, a known dataset...). Every problem becomes a ConfigError
whose message says what is wrong and what is valid; the CLI prints it without a traceback.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


class ConfigError(ValueError):
    """A user's config is invalid; the message says how to fix it."""


@dataclass(frozen=True)
class ModelConfig:
    name: str = "burda_1l"
    latent_dims: list[int] = field(default_factory=lambda: [50])
    hidden_dims: list[list[int]] = field(default_factory=lambda: [[200, 200]])


@dataclass(frozen=True)
class ObjectiveConfig:
    """All objectives' hyper-parameters; each objective's builder takes the ones it names."""

    name: str = "elbo"
    k: int = 1  # samples per example (for hmc: of the encoder's own bound)
    # hmc only (Hoffman 2017): chains started from q(z | x), run on p(z | x)
    num_steps: int = 5  # HMC transitions per update
    num_leapfrog: int = 10
    step_size: float = 0.05  # initial; adapted towards target_accept during training
    target_accept: float = 0.8
    encoder: str = "elbo"  # the encoder's bound: elbo | iwae (with k samples)


@dataclass(frozen=True)
class DataConfig:
    name: str = "mnist_small"
    root: str | None = None  # None: $ELBO_LAB_DATA, else the user cache folder
    download: bool = True
    mirror: str | None = None  # base URL replacing the canonical ones (tests, local mirrors)


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adam"
    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    epochs: int | None = 10  # adam: number of epochs; burda: derived from the stages
    stages: int = 8  # burda: stage i (i = 0..stages-1) runs round(epoch_scale * 3^i) epochs
    epoch_scale: float = 1.0  # burda: shrink every stage for a reduced budget (at least 1 epoch)


@dataclass(frozen=True)
class EvalConfig:
    ks: list[int] = field(default_factory=lambda: [1, 5, 50, 5000])  # test ladder; max = log p(x)
    val_ks: list[int] = field(default_factory=lambda: [1, 5, 50])
    val_every: int = 1  # epochs between validation ladders (0: never)
    test: bool = True
    test_examples: int | None = None  # None: the whole test split
    rows_per_chunk: int = 5000  # samples x examples per decoder matmul; bounds memory
    figures: bool = True


@dataclass(frozen=True)
class LoggerConfig:
    name: str = "wandb"  # wandb | none (metrics.jsonl is always written)
    mode: str = "offline"  # offline | online | disabled
    project: str = "elbo_lab"
    entity: str | None = None
    group: str | None = None  # None: the sweep's folder name in a sweep, else no group
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    name: str = "default"  # experiment name: the first level of the run folder
    out_root: str = "runs"
    seed: int = 0
    batch_size: int = 20
    steps_per_dispatch: int = 200  # minibatches per jitted lax.scan call (metrics read back then)
    checkpoint_every: int = 1  # epochs
    progress: bool = True


OPTIMIZERS = ("adam", "burda")
LOGGERS = ("wandb", "none")
WANDB_MODES = ("offline", "online", "disabled")


def check(ok: bool, message: str) -> None:
    """Raise ConfigError(message) unless ok."""
    if not ok:
        raise ConfigError(message)


def _writable(node: DictConfig) -> DictConfig:
    """Frozen dataclasses make read-only nodes, at every level; merging needs them writable."""
    OmegaConf.set_readonly(node, False)
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            _writable(child)
    return node


def to_dataclass(cfg: DictConfig, schema: type):
    """Merge a composed config into the frozen dataclass `schema` (unknown keys and wrong types
    become a ConfigError naming the key) and return it as an instance of `schema`."""
    raw = OmegaConf.to_container(cfg, resolve=True)
    raw.pop("hydra", None)
    try:
        return OmegaConf.to_object(OmegaConf.merge(_writable(OmegaConf.structured(schema)), raw))
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or getattr(e, "key", None)
        raise ConfigError(f"invalid config{f' at {key!r}' if key else ''}: {e.msg}") from None


def to_train_config(cfg: DictConfig) -> TrainConfig:
    """Validate a composed Hydra config and return it as a frozen TrainConfig."""
    from elbo_lab import data as data_lib
    from elbo_lab.objectives import OBJECTIVES

    tc: TrainConfig = to_dataclass(cfg, TrainConfig)
    o, m, d, opt, ev, lg = tc.objective, tc.model, tc.data, tc.optim, tc.eval, tc.logger
    check(
        o.name in OBJECTIVES,
        f"unknown objective {o.name!r}; valid: {', '.join(OBJECTIVES)} (objective=<name>)",
    )
    check(o.k >= 1, f"objective.k must be a positive number of samples, got {o.k}")
    check(
        d.name in data_lib.DATASETS,
        f"unknown dataset {d.name!r}; valid: {', '.join(data_lib.DATASETS)} (data=<name>)",
    )
    check(
        len(m.latent_dims) >= 1 and len(m.latent_dims) == len(m.hidden_dims),
        "model.latent_dims and model.hidden_dims need one entry per stochastic layer, got "
        f"{m.latent_dims} and {m.hidden_dims}",
    )
    check(
        all(w >= 1 for w in m.latent_dims) and all(w >= 1 for h in m.hidden_dims for w in h),
        "model layer widths must be positive",
    )
    check(opt.name in OPTIMIZERS, f"unknown optim {opt.name!r}; valid: {', '.join(OPTIMIZERS)}")
    check(opt.lr > 0, f"optim.lr must be positive, got {opt.lr}")
    check(0 <= opt.b1 < 1 and 0 <= opt.b2 < 1, "optim.b1 and optim.b2 must lie in [0, 1)")
    check(opt.eps > 0, f"optim.eps must be positive, got {opt.eps}")
    if opt.name == "adam":
        check(opt.epochs is not None and opt.epochs >= 1, "optim.epochs must be >= 1")
    check(opt.stages >= 1 and opt.epoch_scale > 0, "optim.stages >= 1 and optim.epoch_scale > 0")
    check(tc.batch_size >= 1, f"batch_size must be >= 1, got {tc.batch_size}")
    check(tc.steps_per_dispatch >= 1, "steps_per_dispatch must be >= 1")
    check(tc.checkpoint_every >= 1, "checkpoint_every must be >= 1 (epochs)")
    for name, ks in (("eval.ks", ev.ks), ("eval.val_ks", ev.val_ks)):
        check(len(ks) >= 1 and all(k >= 1 for k in ks), f"{name} must be positive K values")
        check(
            all(max(ks) % k == 0 for k in ks),
            f"{name}={ks}: every K must divide the largest, which estimates log p(x)",
        )
    check(ev.val_every >= 0, "eval.val_every must be >= 0 (0 turns validation off)")
    check(ev.rows_per_chunk >= 1, "eval.rows_per_chunk must be >= 1")
    check(ev.test_examples is None or ev.test_examples >= 1, "eval.test_examples must be >= 1")
    check(lg.name in LOGGERS, f"unknown logger {lg.name!r}; valid: {', '.join(LOGGERS)}")
    check(lg.mode in WANDB_MODES, f"logger.mode must be one of {', '.join(WANDB_MODES)}")
    if o.name == "hmc":  # the HMC-refined objective's chain and step-size adaptation
        encoders = ("elbo", "iwae")  # the bounds its encoder can be trained with
        check(o.num_steps >= 1, f"objective.num_steps must be >= 1, got {o.num_steps}")
        check(o.num_leapfrog >= 1, f"objective.num_leapfrog must be >= 1, got {o.num_leapfrog}")
        check(o.step_size > 0, f"objective.step_size must be positive, got {o.step_size}")
        check(
            0 < o.target_accept < 1,
            f"objective.target_accept must lie strictly between 0 and 1, got {o.target_accept}",
        )
        check(
            o.encoder in encoders,
            f"unknown objective.encoder {o.encoder!r}; valid: {', '.join(encoders)}",
        )
    return tc


def objective_hyper(o: ObjectiveConfig) -> dict:
    """The fields of the objective config that its builder takes, as keyword arguments."""
    from elbo_lab.objectives import OBJECTIVES

    accepted = inspect.signature(OBJECTIVES[o.name]).parameters
    return {k: v for k, v in vars(o).items() if k in accepted and k != "model"}
