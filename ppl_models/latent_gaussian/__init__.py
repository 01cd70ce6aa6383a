"""Latent Gaussian models: z ~ Normal(0, I), x | z a (possibly learned) transformation of z plus noise."""
