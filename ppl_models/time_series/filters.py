"""The first-order linear recursion the ARMA and GARCH programs run, in closed form.

Stan's loops ``x_1 = c_1;  x_t = c_t + a x_{t-1}`` (the ARMA(1, 1) errors, with a = -theta; the
GARCH(1, 1) variances, with a = beta1) have the solution x_t = sum_{s <= t} a^(t-s) c_s, one
matrix-vector product with the lower triangular matrix a^(t-s). It is written with arithmetic that
torch and jax.numpy spell alike (the model functions run on both backends) and needs no scan: the
powers come from the data binding as ``lag`` (t - s, 0 above the diagonal) and ``causal`` (1 where
s <= t, else 0).
"""
from __future__ import annotations

import numpy as np


def lag_data(T: int) -> dict[str, np.ndarray]:
    """``lag`` and ``causal``, T x T, for :func:`recursion`."""
    t = np.arange(T)
    lag = t[:, None] - t[None, :]
    return {"lag": np.maximum(lag, 0).astype(float), "causal": (lag >= 0).astype(float)}


def recursion(a, c_1, c_rest, lag, causal):
    """x with x_1 = c_1 and x_t = c_t + a x_{t-1} (t = 2..T, ``c_rest`` = c_2..c_T):
    ``(causal * a ** lag) @ c``, with c split at t = 1 (c_1 and c_rest are computed apart, no concatenation)."""
    weights = causal * a**lag
    return weights[:, 0] * c_1 + weights[:, 1:] @ c_rest
