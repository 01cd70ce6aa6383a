"""Discrete latent models: binary latent units, trained with score-function gradients (``elbo="graph"``,
``elbo="vimco"``) since Bernoulli draws have no reparameterization."""
