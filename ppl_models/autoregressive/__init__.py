"""Autoregressive models: p(x) = prod_d p(x_d | x_<d), each conditional given by a network, so that the
likelihood is exact and there is nothing latent to infer: fitting is maximum likelihood."""
