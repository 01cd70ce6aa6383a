"""One figure of MNIST-sized images, shared by the benchmarks that draw samples or reconstructions."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ppl_models.atomic import save_figure


def image_grid(images: np.ndarray, path: Path, rows: int = 8, title: str | None = None) -> None:
    """The first ``rows * (len(images) // rows)`` images (flat or 28 x 28, values in [0, 1]) as a
    grid of ``rows`` rows, dark ink on white, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = len(images) // rows
    grid = np.asarray(images)[: rows * cols].reshape(rows, cols, 28, 28).transpose(0, 2, 1, 3)
    fig, ax = plt.subplots(figsize=(cols * 0.6, rows * 0.6 + (0.4 if title else 0)))
    ax.imshow(grid.reshape(rows * 28, cols * 28), cmap="gray_r", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    save_figure(fig, path)
