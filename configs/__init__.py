"""The Hydra configs shipped with elbo_lab (installed as the package `elbo_lab.configs`), and
the Hydra sweeper they name (hydra/sweeper=elbo_lab), registered on import."""

from pathlib import Path

import hydra_plugins.elbo_lab_sweeper.sweeper  # noqa: F401  (registers hydra/sweeper=elbo_lab)

CONFIG_DIR = str(Path(__file__).resolve().parent)
