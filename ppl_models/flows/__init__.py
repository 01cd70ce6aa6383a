"""Normalizing flows: x = f(z) with z ~ Normal(0, I) and f invertible, so that the density of x is exact,
p(x) = N(f^-1(x)) |det d f^-1 / dx|, and there is nothing latent to infer: fitting is maximum likelihood."""
