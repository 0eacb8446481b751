"""A user's own components, registered from outside the elbo_lab package (one file each):
`elbo-lab plugins=[mylab.objective,mylab.model,mylab.dataset,mylab.evaluator] ...`."""
