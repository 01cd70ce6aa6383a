"""What a model's trace says about its sites, and the model/guide agreement check."""
from __future__ import annotations

from dataclasses import dataclass

from ppl_models.errors import SiteMismatchError


@dataclass(frozen=True)
class SiteInfo:
    """Sites of one model run: latent sample sites (name -> shape), observed values,
    deterministic sites (name -> shape), and how deeply plates nest."""

    latent: dict[str, tuple]
    observed: dict[str, object]
    deterministic: dict[str, tuple]
    max_plate_nesting: int = 0


def check_guide_matches(model: SiteInfo, guide: SiteInfo, guide_name: str) -> None:
    """The guide must sample exactly the model's latent sites."""
    missing = sorted(set(model.latent) - set(guide.latent))
    extra = sorted(set(guide.latent) - set(model.latent))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"latent site(s) {missing} of the model are not sampled by the guide")
        if extra:
            parts.append(f"the guide samples site(s) {extra} that the model does not have as latent")
        raise SiteMismatchError(f"model and guide {guide_name} disagree: " + "; ".join(parts))
