"""The Hydra configs shipped with elbo_lab (installed as the package `elbo_lab.configs`)."""

from pathlib import Path

CONFIG_DIR = str(Path(__file__).resolve().parent)
