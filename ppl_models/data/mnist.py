"""MNIST (``<data dir>/mnist``): grey-scale digits, and Larochelle & Murray's static binarization.

``mnist.npz``: the classic 50k/10k/10k split, pixels uint8 0..255, labels uint8.
``binarized_mnist.npz``: 0/1 pixels, no labels; its test set is sorted by digit.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ppl_models.data.checksums import read_sums, verify
from ppl_models.data.paths import resolve
from ppl_models.errors import UnknownChoiceError

SUMS = read_sums(Path(__file__).with_name("mnist.sha256"))
SPLITS = ("train", "valid", "test")


@functools.cache
def _arrays(filename: str) -> dict[str, np.ndarray]:
    path = verify(resolve(f"mnist/{filename}"), SUMS[filename])
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def load_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 784) as uint8 0..255 and labels (n,) of one split of the classic MNIST."""
    if split not in SPLITS:
        raise UnknownChoiceError("MNIST split", split, SPLITS)
    arrays = _arrays("mnist.npz")
    return arrays[f"x_{split}"], arrays[f"y_{split}"]


def load_binarized_mnist(split: str) -> np.ndarray:
    """Statically binarized images (n, 784) of one split, uint8 0/1."""
    if split not in SPLITS:
        raise UnknownChoiceError("MNIST split", split, SPLITS)
    return _arrays("binarized_mnist.npz")[f"x_{split}"]


TEST_ORDER_SEED = 0


def test_order(num: int = 10000) -> np.ndarray:
    """A fixed random permutation of the ``num`` test images (numpy seed ``TEST_ORDER_SEED``): the
    order in which every model and benchmark takes a subset of them. Neither test file is in random
    order (the binarized one is sorted by digit; the classic one's halves come from two populations
    of writers, while the training images mix both), so its first images are not a random subset."""
    return np.random.default_rng(TEST_ORDER_SEED).permutation(num)
