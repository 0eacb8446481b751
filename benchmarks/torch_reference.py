"""PyTorch reference of elbo_lab's MLP model and IWAE step, for benchmarks/train_step.py only.

The same architecture as elbo_lab.models.mlp.DeepLatentGaussian with a Bernoulli likelihood (tanh
MLPs, Gaussian layers with [mean, log_std] heads, N(0, I) at the top), its parameters copied from
elbo_lab's, the IWAE-k loss (k = 1: the VAE's) on a minibatch binarized afresh, and torch.optim.Adam
with the trainer's settings. PyTorch is a benchmark-only dependency (`pip install -e ".[bench]"`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch import nn

LOG_2PI = math.log(2 * math.pi)


def mlp(params: dict) -> nn.Sequential:
    """tanh Dense layers and a linear head from a flax param dict {"Dense_i": kernel, bias}."""
    layers = []
    names = sorted(params, key=lambda n: int(n.split("_")[1]))
    for i, n in enumerate(names):
        kernel = torch.tensor(np.asarray(params[n]["kernel"]))
        lin = nn.Linear(*kernel.shape)
        with torch.no_grad():
            lin.weight.copy_(kernel.T)
            lin.bias.copy_(torch.tensor(np.asarray(params[n]["bias"])))
        layers.append(lin)
        if i < len(names) - 1:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def gaussian_log_pdf(z, mean, log_std):
    return torch.sum(-0.5 * ((z - mean) * torch.exp(-log_std)) ** 2 - log_std - 0.5 * LOG_2PI, -1)


class Model(nn.Module):
    """L Gaussian layers: enc[l] maps layer l-1 (x for l = 0) to q(z_l | .); dec[0] maps z_1 to
    the pixels' logits, dec[l] (l >= 1) maps z_{l+1} to p(z_l | z_{l+1})."""

    def __init__(self, latent_dims, params: dict):
        super().__init__()
        self.latent_dims = tuple(latent_dims)
        self.enc = nn.ModuleList(mlp(params[f"enc{i}"]) for i in range(len(latent_dims)))
        self.dec = nn.ModuleList(mlp(params[f"dec{i}"]) for i in range(len(latent_dims)))

    def log_weights(self, x: torch.Tensor, eps: list[torch.Tensor]) -> torch.Tensor:
        """[B, K] log p(x, z) - log q(z | x) at z = mean + std * eps[l] (eps[l]: [B, K, D_l])."""
        h, zs, log_q = x.unsqueeze(1), [], 0.0
        for enc, e in zip(self.enc, eps, strict=True):
            mean, log_std = enc(h).chunk(2, -1)
            z = mean + torch.exp(log_std) * e
            log_q = log_q + gaussian_log_pdf(z, mean, log_std)
            zs.append(z)
            h = z
        log_p = gaussian_log_pdf(zs[-1], 0.0, torch.zeros_like(zs[-1]))
        for i in range(1, len(zs)):
            mean, log_std = self.dec[i](zs[i]).chunk(2, -1)
            log_p = log_p + gaussian_log_pdf(zs[i - 1], mean, log_std)
        logits = self.dec[0](zs[0])
        log_lik = torch.sum(x.unsqueeze(1) * logits - nn.functional.softplus(logits), -1)
        return log_lik + log_p - log_q

    def loss(self, x_probs: torch.Tensor, k: int) -> torch.Tensor:
        """-mean over the batch of the IWAE-k bound, x binarized afresh."""
        x = torch.bernoulli(x_probs)
        eps = [torch.randn(x.shape[0], k, d) for d in self.latent_dims]
        log_w = self.log_weights(x, eps)
        return -torch.mean(torch.logsumexp(log_w, 1) - math.log(k))


class TorchStep:
    """`steps` Adam updates of the IWAE-k loss on minibatches of `batch` per go()."""

    def __init__(self, model, params, data: np.ndarray, batch, k, steps, *, compiled=False):
        torch.manual_seed(0)
        self.net = Model(model.latent_dims, params)
        self.data = torch.tensor(data)
        rng = np.random.default_rng(0)
        self.idx = torch.tensor(rng.integers(0, data.shape[0], size=(steps, batch)))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
        loss = lambda xp: self.net.loss(xp, k)  # noqa: E731
        if compiled:
            # A fresh cache per cell: every cell compiles the same code objects again, and after
            # 8 recompilations dynamo would silently run them eagerly (config.recompile_limit).
            torch._dynamo.reset()
        self.loss = torch.compile(loss) if compiled else loss
        self.opt_step = torch.compile(self.opt.step) if compiled else self.opt.step
        self.go()  # warm up (and compile)

    def go(self) -> None:
        for i in range(self.idx.shape[0]):
            loss = self.loss(self.data[self.idx[i]])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_step()


def max_log_weight_difference(model, params, data: np.ndarray) -> float:
    """max |log w_torch - log w_elbo_lab| over 8 examples x 4 samples at the same z, with the
    same parameters: the two compute the same thing."""
    net = Model(model.latent_dims, params)
    x = torch.bernoulli(torch.tensor(data[:8]), generator=torch.Generator().manual_seed(0))
    eps = [
        torch.randn(8, 4, d, generator=torch.Generator().manual_seed(d)) for d in model.latent_dims
    ]
    with torch.no_grad():
        lw_torch = net.log_weights(x, eps).numpy()
        h, zs = x.unsqueeze(1), []
        for enc, e in zip(net.enc, eps, strict=True):
            mean, log_std = enc(h).chunk(2, -1)
            h = mean + torch.exp(log_std) * e
            zs.append(h)
    z, xj = jnp.asarray(torch.cat(zs, -1).numpy()), jnp.asarray(x.numpy())

    def one(xx, zz):
        return model.log_joint(params, xx, zz) - model.log_q(params, xx, zz)

    lw_jax = jax.vmap(lambda xx, zb: jax.vmap(lambda zz: one(xx, zz))(zb))(xj, z)
    return float(np.max(np.abs(np.asarray(lw_jax) - lw_torch)))
