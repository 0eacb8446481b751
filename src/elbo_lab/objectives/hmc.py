"""HMC-refined training (Hoffman 2017): a sample of q(z | x) is moved towards p(z | x) by a few
HMC transitions before the decoder sees it; the encoder is trained with its own bound."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from elbo_lab import hmc as hmc_lib
from elbo_lab.bounds import bound_terms, log_weights
from elbo_lab.objectives import REGISTRY, Objective
from elbo_lab.objectives.gradients import EncoderOnly
from elbo_lab.registry import check

ENCODER_BOUNDS = ("elbo", "iwae")  # the bounds the encoder can be trained with


class Refined(NamedTuple):
    """One example's HMC chain on p(z | x), started from q; nothing here carries a gradient."""

    z0: jax.Array  # [D] the start, z0 ~ q(z | x)
    z: jax.Array  # [D] after num_steps transitions
    log_joint0: jax.Array  # [] log p(x, z0)
    log_joint: jax.Array  # [] log p(x, z)
    accept_prob: jax.Array  # [] mean Metropolis acceptance probability over the transitions


def hmc_refine(
    params, key: jax.Array, x: jax.Array, step_size, *, model, num_steps: int, num_leapfrog: int
) -> Refined:
    """Draw z0 ~ q(z | x) for one example x [X] and run `num_steps` HMC transitions of
    `num_leapfrog` leapfrog steps on p(z | x), i.e. on the log density log p(x, z) in z.

    Costs 1 + num_steps * num_leapfrog evaluations of log p(x, z) and its z-gradient (hmc.leapfrog
    carries the end gradient over) and one encoder pass. The chain is a sampler, not part of the
    model: its inputs are stop_gradient'ed, so no gradient can reach any parameter through it.
    """
    params = jax.lax.stop_gradient(params)
    k_q, k_chain = jax.random.split(key)
    z0, _, _ = model.sample_q(params, k_q, x)
    value_and_grad = jax.value_and_grad(lambda z: model.log_joint(params, x, z))
    start = hmc_lib.init(z0, value_and_grad)

    def step(state, key):
        state, info = hmc_lib.transition(
            key, state, value_and_grad, step_size=step_size, num_leapfrog=num_leapfrog
        )
        return state, info.accept_prob

    end, accept_prob = jax.lax.scan(step, start, jax.random.split(k_chain, num_steps))
    return Refined(z0, end.z, start.log_density, end.log_density, jnp.mean(accept_prob))


def hmc_objective(
    *,
    model,
    k: int,
    num_steps: int,
    num_leapfrog: int,
    step_size: float,
    target_accept: float,
    encoder: str,
) -> Objective:
    """HMC-refined training (Hoffman 2017). Per example: z0 ~ q(z | x), `num_steps` HMC
    transitions on p(z | x) give z_T; the decoder (and prior) maximise log p(x, z_T) at the fixed
    z_T, the encoder maximises its own `encoder` bound ("elbo" or "iwae", with k samples), which
    updates the encoder only, so q learns to give HMC a good start.

    loss = -mean_b log p(x_b, z_T,b) - mean_b bound_b, each term reaching only its own half of the
    parameters. The state is the step size: after each update it moves by hmc.adapt_step_size
    towards `target_accept` on the batch-mean acceptance probability (`step_size` is its start).
    Decoder evaluations per example per update: 1 + num_steps * num_leapfrog gradient evaluations
    in z for the chain, k forward + backward for the encoder's bound, 1 forward + backward for the
    decoder loss.
    """
    encoder_model = EncoderOnly(model)

    def init():
        return jnp.asarray(step_size, jnp.float32)

    def loss(params, ostate, key, x):
        k_chain, k_enc = jax.random.split(key)
        batch = x.shape[0]
        refine = partial(hmc_refine, model=model, num_steps=num_steps, num_leapfrog=num_leapfrog)
        chains = jax.vmap(refine, in_axes=(None, 0, 0, None))(
            params, jax.random.split(k_chain, batch), x, ostate
        )
        log_joint = jax.vmap(model.log_joint, in_axes=(None, 0, 0))(params, x, chains.z)
        per_example = jax.vmap(
            lambda kk, xx: bound_terms(log_weights(params, kk, xx, model=encoder_model, k=k))
        )
        terms = {
            name: jnp.mean(v) for name, v in per_example(jax.random.split(k_enc, batch), x).items()
        }
        decoder_objective = jnp.mean(log_joint)
        loss_value = -decoder_objective - terms[encoder]
        accept = jnp.mean(chains.accept_prob)
        metrics = {
            **terms,
            "encoder_bound": terms[encoder],
            "log_joint": decoder_objective,
            "log_joint_gain": jnp.mean(chains.log_joint - chains.log_joint0),
            "accept": accept,
            "step_size": ostate,
            "loss": loss_value,
        }
        return loss_value, (metrics, hmc_lib.adapt_step_size(ostate, accept, target_accept))

    return Objective(init=init, loss=loss)


@REGISTRY.register("hmc")
@dataclass(frozen=True)
class HMC:
    """z0 ~ q(z | x), num_steps HMC transitions of num_leapfrog leapfrog steps on p(z | x) give
    z_T; the decoder maximises log p(x, z_T) at the fixed z_T, the encoder its own bound (elbo |
    iwae, with k samples). The step size starts at step_size and adapts towards target_accept."""

    k: int = 1
    num_steps: int = 5
    num_leapfrog: int = 10
    step_size: float = 0.05
    target_accept: float = 0.8
    encoder: str = "elbo"

    def __post_init__(self):
        check(self.k >= 1, f"objective.k must be a positive number of samples, got {self.k}")
        check(self.num_steps >= 1, f"objective.num_steps must be >= 1, got {self.num_steps}")
        check(
            self.num_leapfrog >= 1, f"objective.num_leapfrog must be >= 1, got {self.num_leapfrog}"
        )
        check(self.step_size > 0, f"objective.step_size must be positive, got {self.step_size}")
        check(
            0 < self.target_accept < 1,
            f"objective.target_accept must lie strictly between 0 and 1, got {self.target_accept}",
        )
        check(
            self.encoder in ENCODER_BOUNDS,
            f"unknown objective.encoder {self.encoder!r}; valid: {', '.join(ENCODER_BOUNDS)}",
        )

    def build(self, model) -> Objective:
        return hmc_objective(
            model=model,
            k=self.k,
            num_steps=self.num_steps,
            num_leapfrog=self.num_leapfrog,
            step_size=self.step_size,
            target_accept=self.target_accept,
            encoder=self.encoder,
        )

    def label(self) -> str:
        return f"HMC(T={self.num_steps},L={self.num_leapfrog},k={self.k},{self.encoder})"
