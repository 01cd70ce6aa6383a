"""What a model's trace says about its sites, and the model/guide agreement check."""
from __future__ import annotations

from dataclasses import dataclass, field

from ppl_models.errors import SiteMismatchError


@dataclass(frozen=True)
class SiteInfo:
    """Sites of one model run: latent sample sites (name -> shape), observed values,
    deterministic sites (name -> shape), how deeply plates nest, and a guide's auxiliary sites
    (``infer={"is_auxiliary": True}``: noise an implicit guide transforms, not a latent of the model)."""

    latent: dict[str, tuple]
    observed: dict[str, object]
    deterministic: dict[str, tuple]
    max_plate_nesting: int = 0
    auxiliary: dict[str, tuple] = field(default_factory=dict)


def check_guide_matches(model: SiteInfo, guide: SiteInfo, guide_name: str, density_needed: bool = True) -> None:
    """The guide must sample exactly the model's latent sites; where its density is needed (SVI,
    importance sampling), it must not be implicit: auxiliary noise makes q(z) intractable."""
    missing = sorted(set(model.latent) - set(guide.latent))
    extra = sorted(set(guide.latent) - set(model.latent))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"latent site(s) {missing} of the model are not sampled by the guide")
        if extra:
            parts.append(f"the guide samples site(s) {extra} that the model does not have as latent")
        raise SiteMismatchError(f"model and guide {guide_name} disagree: " + "; ".join(parts))
    if density_needed and guide.auxiliary:
        raise ValueError(f"the guide {guide_name} is implicit: it transforms auxiliary noise "
                         f"{sorted(guide.auxiliary)}, so its density q(z | x) is intractable, and this method "
                         "needs it. Fit it with method='avb', which estimates log q(z | x) - log p(z) with a "
                         "discriminator")
