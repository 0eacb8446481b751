"""The training config: the chosen components (registry entries) and the trainer's own settings.

Hydra composes configs/ with the registries' schemas (ConfigStore); `to_train_config` turns the
result, or a run folder's config.json, into a frozen TrainConfig: each component through its
registry (unknown names and fields, wrong types and out-of-range values stop with a message
naming what is valid), the rest through the dataclasses below. Every problem is a ConfigError.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from elbo_lab import data, likelihoods, models, objectives
from elbo_lab.errors import ConfigError
from elbo_lab.evaluators.ladder import check_ks
from elbo_lab.registry import check, load_plugins, structured

# The component groups of a training config and their registries.
COMPONENTS = {
    "model": models.REGISTRY,
    "objective": objectives.REGISTRY,
    "data": data.REGISTRY,
    "likelihood": likelihoods.REGISTRY,
}
OPTIMIZERS = ("adam", "burda")
LOGGERS = ("wandb", "none")
WANDB_MODES = ("offline", "online", "disabled")


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adam"  # adam: constant lr; burda: the IWAE paper's 3^i-epoch stages
    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    epochs: int | None = 10  # adam: number of epochs; burda: derived from the stages
    stages: int = 8  # burda: stage i (i = 0..stages-1) runs round(epoch_scale * 3^i) epochs
    epoch_scale: float = 1.0  # burda: shrink every stage for a reduced budget (at least 1 epoch)

    def __post_init__(self):
        check(
            self.name in OPTIMIZERS, f"unknown optim {self.name!r}; valid: {', '.join(OPTIMIZERS)}"
        )
        check(self.lr > 0, f"optim.lr must be positive, got {self.lr}")
        check(0 <= self.b1 < 1 and 0 <= self.b2 < 1, "optim.b1 and optim.b2 must lie in [0, 1)")
        check(self.eps > 0, f"optim.eps must be positive, got {self.eps}")
        if self.name == "adam":
            check(self.epochs is not None and self.epochs >= 1, "optim.epochs must be >= 1")
        else:  # burda: the stages set the epochs; a number here would be silently ignored
            check(
                self.epochs is None,
                f"optim.epochs={self.epochs} has no effect under optim=burda, whose stages set the "
                "epochs: shorten it with optim.stages=<n> or optim.epoch_scale=<s>, or train for "
                "a fixed number of epochs with optim=adam optim.epochs=<n>",
            )
        check(self.stages >= 1 and self.epoch_scale > 0, "optim.stages >= 1, optim.epoch_scale > 0")


@dataclass(frozen=True)
class EvalConfig:
    ks: list[int] = (1, 5, 50, 5000)  # test ladder; max = log p(x)
    val_ks: list[int] = (1, 5, 50)
    val_every: int = 1  # epochs between validation ladders (0: never)
    test: bool = True
    test_examples: int | None = None  # None: the whole test split
    rows_per_chunk: int = 5000  # samples x examples per decoder matmul; bounds memory
    figures: bool = True
    # Gradient SNR (diagnostics.gradient_snr) every snr_every epochs (0: never): snr_repeats
    # gradients at the epoch's parameters on one fixed minibatch, the first snr_examples training
    # examples (binarized once); it costs about snr_repeats train steps.
    snr_every: int = 0
    snr_repeats: int = 100
    snr_examples: int = 20

    def __post_init__(self):
        check(self.snr_every >= 0, "eval.snr_every must be >= 0 (0 turns the SNR off)")
        check(self.snr_repeats >= 2, "eval.snr_repeats must be >= 2 (a variance needs two)")
        check(self.snr_examples >= 1, "eval.snr_examples must be >= 1")
        check_ks(self.ks, "eval.ks")
        check_ks(self.val_ks, "eval.val_ks")
        check(self.val_every >= 0, "eval.val_every must be >= 0 (0 turns validation off)")
        check(self.rows_per_chunk >= 1, "eval.rows_per_chunk must be >= 1")
        check(self.test_examples is None or self.test_examples >= 1, "eval.test_examples >= 1")


@dataclass(frozen=True)
class LoggerConfig:
    name: str = "wandb"  # wandb | none (metrics.jsonl is always written)
    mode: str = "offline"  # offline | online | disabled
    project: str = "elbo_lab"
    entity: str | None = None
    group: str | None = None  # None: the sweep's folder name in a sweep, else no group
    tags: list[str] = ()

    def __post_init__(self):
        check(self.name in LOGGERS, f"unknown logger {self.name!r}; valid: {', '.join(LOGGERS)}")
        check(self.mode in WANDB_MODES, f"logger.mode must be one of {', '.join(WANDB_MODES)}")


@dataclass(frozen=True)
class TrainConfig:
    model: Any = None  # registry entries (models.REGISTRY, ...), set by to_train_config
    objective: Any = None
    data: Any = None
    likelihood: Any = None
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
    plugins: list[str] = ()  # modules that register components (imported before validation)
    allow_changes: bool = False  # resume or re-serve despite a changed config or code (recorded)
    devices: int = 1  # split each minibatch (and the evaluations' examples) over this many devices
    distributed: bool = False  # one process per host, joined by jax.distributed (elbo_lab.parallel)

    def __post_init__(self):
        check(self.seed >= 0, f"seed must be a non-negative integer, got {self.seed}")
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.steps_per_dispatch >= 1, "steps_per_dispatch must be >= 1")
        check(self.checkpoint_every >= 1, "checkpoint_every must be >= 1 (epochs)")
        check(self.devices >= 1, f"devices must be >= 1, got {self.devices}")
        check(
            self.batch_size % self.devices == 0,
            f"batch_size={self.batch_size} does not split over devices={self.devices}: use a "
            f"batch size that is a multiple of {self.devices}",
        )


def to_dataclass(raw: dict, schema: type):
    """Merge a plain dict into the frozen dataclass `schema` (unknown keys and wrong types
    become a ConfigError naming the key) and return an instance of `schema`."""
    try:
        node = OmegaConf.merge(structured(schema), raw)
        return OmegaConf.to_object(node)
    except OmegaConfBaseException as e:
        if isinstance(e.__cause__, ConfigError):
            raise e.__cause__ from None
        key = getattr(e, "full_key", None) or getattr(e, "key", None)
        msg = str(e.msg).splitlines()[0]
        if "is not a ListConfig" in msg:  # OmegaConf's words for a scalar where a list belongs
            msg = f"expected a list, e.g. [1,5,50], got {getattr(e, 'value', '')!r}"
        raise ConfigError(f"invalid config{f' at {key!r}' if key else ''}: {msg}") from None


def plain(cfg) -> dict:
    """A composed DictConfig (or a dict) as a plain dict, without Hydra's own node (dropped
    before resolving: its interpolations need a running Hydra job)."""
    if not isinstance(cfg, DictConfig):
        return {k: v for k, v in cfg.items() if k != "hydra"}
    return OmegaConf.to_container(
        OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True
    )


def to_train_config(cfg: DictConfig | dict) -> TrainConfig:
    """Validate a composed config (or a run's config.json, any format) as a TrainConfig."""
    raw = migrate(plain(cfg))
    load_plugins(raw.get("plugins") or ())
    entries = {g: reg.from_config(raw.pop(g, None), g) for g, reg in COMPONENTS.items()}
    tc = to_dataclass(raw, TrainConfig)
    return dataclasses.replace(tc, **entries)


def to_dict(tc: TrainConfig) -> dict:
    """A TrainConfig as the JSON-ready dict stored in config.json and W&B."""
    out = {}
    for f in dataclasses.fields(tc):
        value = getattr(tc, f.name)
        if f.name in COMPONENTS:
            out[f.name] = COMPONENTS[f.name].to_dict(value)
        elif dataclasses.is_dataclass(value):
            out[f.name] = {
                k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(value).items()
            }
        else:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def migrate(raw: dict) -> dict:
    """A config.json written before the registries (no `likelihood`) in today's form: the
    preset name of the MLP model becomes `mlp`, the objective keeps its own fields only (the
    old flat schema stored every objective's), mnist_small drops the data-root fields it never
    used, and the likelihood is Bernoulli (the only one there was). Today's configs pass as
    they are."""
    if "likelihood" in raw or "objective" not in raw:
        return raw
    raw = dict(raw)
    model = dict(raw["model"])
    if model.get("name") in ("burda_1l", "burda_2l"):
        model["name"] = "mlp"
    objective = dict(raw["objective"])
    keep = set(objectives.REGISTRY.fields(objective["name"])) | {"name"}
    data_node = dict(raw["data"])
    data_keep = set(data.REGISTRY.fields(data_node["name"])) | {"name"}
    raw.update(
        model=model,
        objective={k: v for k, v in objective.items() if k in keep},
        data={k: v for k, v in data_node.items() if k in data_keep},
        likelihood={"name": "bernoulli"},
    )
    return raw
