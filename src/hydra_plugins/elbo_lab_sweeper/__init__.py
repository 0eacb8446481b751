"""elbo_lab's Hydra sweeper (hydra/sweeper=elbo_lab, the default of elbo-lab's configs)."""
