"""The Hydra configs shipped with elbo_lab (installed as the package `elbo_lab.configs`), and
the Hydra sweeper they name (hydra/sweeper=elbo_lab), registered on import."""

from pathlib import Path

from hydra_plugins.elbo_lab_sweeper.sweeper import register

register()

CONFIG_DIR = str(Path(__file__).resolve().parent)
