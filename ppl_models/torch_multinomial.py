"""A Pyro Multinomial with one total count per batch element, as NumPyro's takes.

PyTorch's ``Multinomial`` takes a single integer ``total_count`` ("inhomogeneous
total_count is not supported"); its ``log_prob`` never reads it, but its ``sample``
does. Documents of a corpus differ in length, so this one keeps a tensor of totals
and samples each row with its own. Its ``log_prob`` also takes the log of the
probabilities as given, down to the smallest normal float, where PyTorch's clamps them
at machine epsilon (2e-16 in float64): a mixture of topics gives rare words smaller
probabilities than that, and the two backends' densities would disagree. And given logits,
it validates the logits: PyTorch's validates the probabilities computed from them against
the simplex to 1e-6, which a softmax over 9000 words in float32 misses by rounding alone.
"""
from __future__ import annotations

import pyro.distributions as dist
import torch
from torch.distributions import constraints


class Multinomial(dist.Multinomial):
    def __init__(self, total_count, probs=None, logits=None, validate_args=None):
        self._from_logits = logits is not None
        total = torch.as_tensor(total_count)
        super().__init__(int(total.max()) if total.numel() else 0, probs=probs, logits=logits,
                         validate_args=validate_args)
        self.total_count = total.to(self._categorical.logits.device)
        if probs is not None:
            probs = probs / probs.sum(-1, keepdim=True)
            self._log_probs = probs.clamp(min=torch.finfo(probs.dtype).tiny).log()
        else:
            self._log_probs = logits - logits.logsumexp(-1, keepdim=True)

    @property
    def arg_constraints(self):
        return {"logits": constraints.real_vector} if self._from_logits else {"probs": constraints.simplex}

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.multinomial(self.total_count)

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape, self._get_checked_instance(Multinomial, _instance))
        new.total_count, new._from_logits = self.total_count, self._from_logits
        new._log_probs = self._log_probs.expand(new.batch_shape + new.event_shape)
        return new

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        log_probs, value = torch.broadcast_tensors(self._log_probs, value)
        terms = torch.where(value == 0, 0.0, value * log_probs)
        return torch.lgamma(value.sum(-1) + 1) - torch.lgamma(value + 1).sum(-1) + terms.sum(-1)

    def sample(self, sample_shape=()):
        n = int(self.total_count.max())
        shape = torch.Size(sample_shape) + self.batch_shape
        tokens = self._categorical.sample(torch.Size((n,)) + torch.Size(sample_shape))  # (n, *shape)
        position = torch.arange(n, device=tokens.device).reshape(n, *([1] * len(shape)))
        kept = (position < self.total_count).expand(tokens.shape).to(self._categorical.logits.dtype)
        counts = torch.zeros(*shape, self.event_shape[-1], dtype=kept.dtype, device=tokens.device)
        return counts.scatter_add_(-1, tokens.movedim(0, -1), kept.movedim(0, -1))
