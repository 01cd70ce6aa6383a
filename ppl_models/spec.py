"""``ModelSpec``: a generative process, its data binding and its ground truth.

A spec holds model (and optionally guide) functions per backend, the data they
are called with, and the reference posterior used to score inference. Model
functions take the data as keyword arguments; an observed site takes its value
from the data entry of the same name (``numpyro.sample("y", ..., obs=y)``).
"""
from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ppl_models.errors import DataError, OptionError, PPLError, UnknownChoiceError
from ppl_models.reference import Reference

BACKENDS = ("pyro", "numpyro")
DTYPES = ("float32", "float64")
FunctionRef = Callable | str  # a function, or "package.module:function" imported on first use


def resolve_function(ref: FunctionRef) -> Callable:
    """A callable from a function or a ``"module:attribute"`` string.

    Strings keep ``import ppl_models`` free of torch and jax: a backend's model
    module is imported only when that backend runs.
    """
    if callable(ref):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _check_array(key: str, value) -> np.ndarray | numbers.Number:
    if isinstance(value, (bool, numbers.Number)) and not isinstance(value, np.ndarray):
        if isinstance(value, float) and not np.isfinite(value):
            raise DataError(f"data[{key!r}] is {value}; data must be finite")
        return value
    try:
        arr = np.asarray(value)
    except Exception as e:  # ragged lists and the like
        raise DataError(f"data[{key!r}] is not an array: {e}") from e
    if arr.dtype.kind not in "biuf":
        raise DataError(f"data[{key!r}] has dtype {arr.dtype}; data must be numeric arrays or scalars")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise DataError(f"data[{key!r}] holds NaN or inf (first at index {tuple(bad.tolist())})")
    return arr


def check_dims(data: Mapping, dims: Mapping[str, tuple]) -> None:
    """Check array shapes against declared dims.

    ``dims`` maps a data key to a tuple of sizes: an int, or a name. A name that is
    a scalar in ``data`` (``"J"``) must equal it; any other name is bound by its
    first use and must agree everywhere after.
    """
    bound: dict[str, int] = {}
    for key, want in dims.items():
        if key not in data:
            raise DataError(f"data is missing key {key!r} (expected shape {want})")
        shape = np.shape(data[key])
        if len(shape) != len(want):
            raise DataError(f"data[{key!r}] has shape {shape}; expected {len(want)} dimension(s) {want}")
        for size, dim in zip(shape, want, strict=True):
            if isinstance(dim, str) and dim in data and np.ndim(data[dim]) == 0:
                expected = int(data[dim])
            elif isinstance(dim, str):
                expected = bound.setdefault(dim, size)
            else:
                expected = dim
            if size != expected:
                raise DataError(f"data[{key!r}] has shape {shape}; expected {want} with {dim} = {expected}")


def check_index_bounds(data: Mapping, bounds: Mapping[str, int | str]) -> None:
    """Check that index arrays hold integers in ``[0, bound)``.

    ``bounds`` maps a data key to its exclusive upper bound: an int, or the name of a
    scalar in ``data`` (``{"county_idx": "J"}``). JAX clamps out-of-range indices
    silently and PyTorch fails deep inside the model, so they are refused here.
    """
    for key, bound in bounds.items():
        if key not in data:
            raise DataError(f"data is missing key {key!r} (an index array bounded by {bound!r})")
        arr = np.asarray(data[key])
        if arr.dtype.kind not in "iu":
            raise DataError(f"data[{key!r}] holds indices and must be integers, not {arr.dtype}")
        upper = int(data[bound]) if isinstance(bound, str) else bound
        bad = np.flatnonzero((arr < 0) | (arr >= upper))
        if bad.size:
            raise DataError(f"data[{key!r}] holds {arr.flat[bad[0]]} at index {bad[0]}, outside [0, {upper}) "
                            f"({bad.size} such entries; the bound is {bound!r})")


SUPPORTS = {"binary": (lambda a: np.isin(a, (0, 1)), "0 or 1"),
            "unit_interval": (lambda a: (a >= 0) & (a <= 1), "in [0, 1]"),
            "count": (lambda a: (a >= 0) & (a == np.round(a)), "non-negative integers")}


def check_support(data: Mapping, support: Mapping[str, str], name: str) -> None:
    """Check that data entries lie in the support their likelihood needs (``{"x": "binary"}``)."""
    for key, kind in support.items():
        if kind not in SUPPORTS:
            raise UnknownChoiceError(f"support of data[{key!r}]", kind, SUPPORTS)
        inside, words = SUPPORTS[kind]
        bad = np.argwhere(~inside(np.asarray(data[key])))
        if bad.size:
            first = tuple(bad[0].tolist())
            raise DataError(f"data[{key!r}] of {name!r} holds {np.asarray(data[key])[first]} at index {first}, but its "
                            f"likelihood needs values {words} ({len(bad)} such entries)")


def network_names(fn: Callable) -> set[str]:
    return set(inspect.signature(fn).parameters)


def bind_networks(fn: Callable, networks: Mapping[str, object]) -> Callable:
    """``fn`` with the built networks it takes (by parameter name) bound as keyword arguments
    (None, for a model without a guide, stays None)."""
    if fn is None:
        return None
    taken = {k: v for k, v in networks.items() if k in network_names(fn)}
    return functools.wraps(fn)(functools.partial(fn, **taken)) if taken else fn


def _takes(fn: Callable) -> tuple[set[str], list[str], bool]:
    """``fn``'s keyword-bindable parameter names, those without a default, and whether it takes ``**kwargs``."""
    params = inspect.signature(fn).parameters.values()
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return ({p.name for p in named}, [p.name for p in named if p.default is p.empty],
            any(p.kind is p.VAR_KEYWORD for p in params))


def _close_match(key: str, names) -> str | None:
    """The name ``key`` looks like a misspelling of, if any (case-insensitive)."""
    lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(key.lower(), list(lower), n=1)
    return lower[close[0]] if close else None


def check_call(fn: Callable, data: Mapping, role: str, networks: Mapping = ()) -> list[str]:
    """Check that ``fn(**data)`` binds: no missing key, no key that looks like a misspelt argument.

    Returns the data keys ``fn`` does not take (sorted), which are dropped before calling it: a
    posteriordb data file carries the keys of every model written for it. A key the function does
    not take that is a close match (``difflib``) to one of its arguments not given is refused with
    "did you mean". ``networks`` are bound to the functions that take them, so they may be missing
    from the signature but count as given.
    """
    names, required, var_keyword = _takes(fn)
    if var_keyword:
        return []
    extra = sorted(set(data) - names)
    not_given = [n for n in names if n not in data and n not in networks]
    missing = [n for n in required if n not in data and n not in networks]
    if missing:
        hints = [f"{k!r} for {_close_match(k, missing)!r}" for k in extra if _close_match(k, missing)]
        hint = f" (data has {', '.join(hints)}: misspelt?)" if hints else ""
        raise DataError(f"data is missing key(s) {missing} that the {role} {fn.__qualname__} needs{hint}")
    for key in extra:
        close = _close_match(key, not_given)
        if close:
            raise DataError(f"data has key {key!r} that the {role} {fn.__qualname__} does not take "
                            f"(did you mean {close!r}? it takes {sorted(names)})")
    return extra


def dropping_keys(fn: Callable, keys) -> Callable:
    """``fn`` called with the keyword arguments ``keys`` left out (``fn`` itself if there are none)."""
    keys = frozenset(keys)
    if not keys:
        return fn

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return fn(*args, **{k: v for k, v in kwargs.items() if k not in keys})

    return call


def args_left_at_none(fn: Callable, data: Mapping) -> list[str]:
    """Arguments of ``fn`` (networks already bound) that ``data`` does not give and that default to None."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.default is None and p.name not in data]


def float_dtype_of(data: Mapping) -> str:
    """The precision data asks for: float32 if it has floating point arrays and all are float32,
    else float64."""
    floats = [np.asarray(v).dtype for v in data.values() if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
    return "float32" if floats and all(d == np.float32 for d in floats) else "float64"


@dataclass(frozen=True)
class Minibatch:
    """How training splits the data into minibatches.

    For models written over a minibatch, ``pyro.plate("data", num_data, subsample_size=len(x))``:
    the plate's size stays the full data size (a scalar data entry), so each minibatch's log
    density is scaled by ``num_data / len(x)``, and the entries in ``keys`` are sliced along
    their first axis.

    ``binarize`` maps a key to grey levels (uint8, 0..255, the key's shape) for dynamic
    binarization: each minibatch draws that key afresh, pixel by pixel, as Bernoulli(grey / 255).
    ``dequantize`` maps a key to grey levels for uniform dequantization: each minibatch draws it
    afresh as (grey + u) / 256, u ~ Uniform(0, 1) per pixel, continuous values in (0, 1) whose
    density, times 256^-D, bounds the probability of the grey levels from below (Theis et al. 2016).
    """

    keys: tuple[str, ...]
    binarize: Mapping[str, np.ndarray] = field(default_factory=dict)
    dequantize: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def grey(self) -> dict[str, tuple[str, np.ndarray]]:
        """The keys drawn afresh for each minibatch: key -> (``"binarize"`` or ``"dequantize"``, grey levels)."""
        return ({k: ("binarize", g) for k, g in self.binarize.items()}
                | {k: ("dequantize", g) for k, g in self.dequantize.items()})

    def check(self, data: Mapping, name: str) -> None:
        sizes = set()
        for key in self.keys:
            if key not in data or np.ndim(data[key]) == 0:
                raise DataError(f"minibatch key {key!r} of {name!r} is not an array in its data")
            sizes.add(np.shape(data[key])[0])
        if len(sizes) > 1:
            raise DataError(f"minibatch keys {self.keys} of {name!r} differ in length along axis 0: {sorted(sizes)}")
        if both := sorted(set(self.binarize) & set(self.dequantize)):
            raise DataError(f"minibatch keys {both} of {name!r} are both binarized and dequantized; choose one")
        for key, (kind, grey) in self.grey.items():
            if key not in self.keys:
                raise DataError(f"{kind} key {key!r} of {name!r} is not a minibatch key {self.keys}")
            if np.asarray(grey).dtype != np.uint8 or np.shape(grey) != np.shape(data[key]):
                raise DataError(f"{kind}[{key!r}] of {name!r} must be uint8 grey levels of shape "
                                f"{np.shape(data[key])}, not {np.asarray(grey).dtype} {np.shape(grey)}")


def redraw(kind: str, grey, u):
    """A minibatch key drawn afresh from its grey levels (``Minibatch``), given uniforms ``u`` of their
    shape; numpy, JAX or PyTorch arrays: the binarized pixels (booleans) or the dequantized values."""
    return u * 255.0 < grey if kind == "binarize" else (grey + u) / 256.0


HELD_OUT_KINDS = ("topics", "likelihood", "samples", "exact_likelihood")


@dataclass(frozen=True)
class HeldOut:
    """Data a fit does not see, to score the fits of a model without a reference posterior
    (``inference.held_out``). ``kind`` says what ``data`` is and what is scored:

    * ``"topics"``: the prepared corpus (``ppl_models.lda.corpus``) whose training documents the
      model is fitted to; perplexity of the test documents' held-out halves, NPMI coherence and
      topic diversity;
    * ``"likelihood"``: a function returning the spec of the test data; the held-out negative
      log-likelihood per data point, by importance sampling with the fitted guide as proposal;
    * ``"samples"``: test points; the squared MMD between points the fitted model generates and them;
    * ``"exact_likelihood"``: a function returning the spec of the test data, for a model with no latent
      variables (MADE, a flow); the held-out negative log-likelihood per data point, computed exactly
      at the fitted parameters, its estimator's standard error 0.
    """

    kind: str
    data: object

    def __post_init__(self):
        if self.kind not in HELD_OUT_KINDS:
            raise UnknownChoiceError("held-out kind", self.kind, HELD_OUT_KINDS)


@dataclass(frozen=True)
class ModelSpec:
    """A model, its data and its ground truth, runnable on one or both backends.

    Args:
        name: registry name, posteriordb style ``<data>-<model>``.
        data: keyword arguments of the model and guide: numpy arrays and Python scalars.
        model: backend name (``"pyro"``, ``"numpyro"``) -> model function (or ``"module:function"``).
        guide: backend name -> guide function, for models with a hand-written guide.
        reference: ground truth for scoring inference, if known.
        data_dims: data key -> expected shape (ints or dimension names), checked up front.
        index_bounds: data key of an index array -> exclusive upper bound (int or scalar data key).
        dtype: floating point precision the model runs in by default; None (the default): the data's,
            float32 if every floating point array in ``data`` is float32, else float64.
        description: the generative story in words.
        networks: name -> network factory (``ppl_models.nets``). Each run builds the networks
            afresh from its seed and passes each to the model and guide functions that take a
            parameter of that name.
        minibatch: which data entries training may split into minibatches, if any.
        data_support: data key -> ``"binary"``, ``"unit_interval"`` or ``"count"``, checked up front.
        likelihood: False for an implicit model, whose data site can be sampled but whose density
            means nothing (a point mass at a generator's output). Methods that evaluate the
            likelihood refuse such a model; likelihood-free methods fit it.
        held_out: data the fit does not see, for scoring fits when there is no reference (``HeldOut``).
    """

    name: str
    data: Mapping[str, object]
    model: Mapping[str, FunctionRef]
    guide: Mapping[str, FunctionRef] | None = None
    reference: Reference | None = None
    data_dims: Mapping[str, tuple] = field(default_factory=dict)
    index_bounds: Mapping[str, int | str] = field(default_factory=dict)
    dtype: str | None = None
    description: str = ""
    networks: Mapping[str, object] = field(default_factory=dict)
    minibatch: Minibatch | None = None
    data_support: Mapping[str, str] = field(default_factory=dict)
    likelihood: bool = True
    held_out: HeldOut | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("a ModelSpec needs a non-empty name")
        if not isinstance(self.model, Mapping) or not self.model:
            raise ValueError(f"model of {self.name!r} must be a dict backend -> function, e.g. {{'numpyro': model}}")
        for role, fns in (("model", self.model), ("guide", self.guide or {})):
            for backend in fns:
                if backend not in BACKENDS:
                    raise UnknownChoiceError(f"{role} backend", backend, BACKENDS)
        missing_model = set(self.guide or {}) - set(self.model)
        if missing_model:
            raise ValueError(f"{self.name!r} has a guide but no model for backend(s) {sorted(missing_model)}")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise UnknownChoiceError("dtype", self.dtype, DTYPES)
        if not isinstance(self.data, Mapping):
            raise DataError(f"data of {self.name!r} must be a dict of arrays and scalars")
        object.__setattr__(self, "data", {k: _check_array(k, v) for k, v in self.data.items()})
        if self.dtype is None:
            object.__setattr__(self, "dtype", float_dtype_of(self.data))
        check_dims(self.data, self.data_dims)
        check_index_bounds(self.data, self.index_bounds)
        check_support(self.data, self.data_support, self.name)
        if self.minibatch is not None:
            self.minibatch.check(self.data, self.name)

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(b for b in BACKENDS if b in self.model)

    def _fn(self, role: str, fns: Mapping | None, backend: str) -> Callable:
        if backend not in BACKENDS:
            raise UnknownChoiceError("backend", backend, BACKENDS)
        if not fns or backend not in fns:
            raise UnknownChoiceError(f"backend for the {role} of {self.name!r}", backend, fns or ())
        return resolve_function(fns[backend])

    def ignored_keys(self, backend: str) -> list[str]:
        """Data keys neither the model nor (if it has one) the guide for ``backend`` takes: they are
        dropped before calling them (a posteriordb data file carries other models' keys too)."""
        ignored = set(check_call(self._fn("model", self.model, backend), self.data, "model", self.networks))
        if self.guide and backend in self.guide:
            ignored &= set(check_call(self._fn("guide", self.guide, backend), self.data, "guide", self.networks))
        return sorted(ignored)

    def model_fn(self, backend: str) -> Callable:
        """The model function for ``backend``, checked against the data; data keys it does not take
        are dropped when it is called."""
        fn = self._fn("model", self.model, backend)
        fn = dropping_keys(fn, check_call(fn, self.data, "model", self.networks))
        guide = self._fn("guide", self.guide, backend) if self.guide and backend in self.guide else None
        taken = network_names(fn) | (network_names(guide) if guide else set())
        unused = sorted(set(self.networks) - taken)
        if unused:
            raise DataError(f"network(s) {unused} of {self.name!r} are taken by neither the model nor the guide "
                            f"(no parameter of that name; they take {sorted(taken)})")
        return fn

    def own_guide(self, backend: str) -> Callable | None:
        """The spec's own guide for ``backend``, or None if it has none there."""
        return self.guide_fn(backend) if self.guide and backend in self.guide else None

    def guide_fn(self, backend: str) -> Callable:
        """The spec's own guide for ``backend``, checked against the data."""
        fn = self._fn("guide", self.guide, backend)
        return dropping_keys(fn, check_call(fn, self.data, "guide", self.networks))


# --- diagnosing a model that fails on its data (used by the backends' trace_sites) ---

def _first_line(error: BaseException, limit: int = 160) -> str:
    text = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def _plates(plates: Mapping[str, int]) -> str:
    return ", ".join(f"{name!r} (size {size})" for name, size in plates.items())


def data_key_of(name: str, value, data: Mapping) -> str:
    """How to name the data an observed site ``name`` holds: ``data['key']`` (the entry it is, or
    of its name), else the site."""
    key = next((k for k, v in data.items() if v is value), name if name in data else None)
    return f"data[{key!r}] (observed at site {name!r})" if key is not None else f"the value observed at site {name!r}"


def diagnose_trace_error(error: Exception, fn: Callable, data: Mapping, plates: Mapping[str, int],
                         role: str = "model") -> PPLError | None:
    """A one-line error naming the data behind ``error``, raised by running ``fn(**data)``, or None
    if no culprit is found. ``plates``: name -> size of the plates the run entered before failing.

    * arguments left at None (no data key for them): the model ran without data it needs;
    * a shape error: the data arrays whose shape holds none of the plates' sizes.
    """
    failed = f"the {role} failed on its data ({_first_line(error)})"
    left = args_left_at_none(fn, data)
    if left:
        return DataError(f"data has no key(s) {left}, so the {role}'s argument(s) of that name were left at None "
                         f"and {failed}")
    words = ("shape", "broadcast", "size", "dimension", "mismatch")
    if plates and any(w in str(error).lower() for w in words):
        sizes = set(plates.values())
        culprits = [k for k, v in data.items() if np.ndim(v) >= 1 and not sizes & set(np.shape(v))]
        if culprits:
            shapes = ", ".join(f"data[{k!r}] has shape {tuple(np.shape(data[k]))}" for k in culprits)
            return DataError(f"{shapes}, which fits none of the {role}'s plates {_plates(plates)}; {failed}")
    return None


def check_observed(name: str, value, dist_shape: tuple, frames: Mapping[str, int], inside, support,
                   data: Mapping) -> None:
    """Check the data observed at site ``name`` against its distribution: ``dist_shape`` (batch +
    event shape, plates included) and ``inside`` (``support.check(value)`` as numpy booleans, or None
    if the support cannot be checked). ``frames``: the site's plates, name -> size."""
    shape = tuple(np.shape(value))
    try:
        np.broadcast_shapes(shape, tuple(dist_shape))
    except ValueError:
        where = f" in plate(s) {_plates(frames)}" if frames else ""
        raise DataError(f"{data_key_of(name, value, data)} has shape {shape}, but the distribution{where} has "
                        f"shape {tuple(dist_shape)}") from None
    if inside is None or np.all(inside):
        return
    bad = np.argwhere(~np.asarray(inside))
    first = tuple(bad[0].tolist()) if bad.size else ()
    try:
        arr = np.asarray(value)
        shown = arr[first[len(first) - arr.ndim:] if arr.ndim < len(first) else first] if first else arr
        shown = f"{shown.item() if np.ndim(shown) == 0 else shown.tolist()}"[:60]
    except (IndexError, ValueError):
        shown = "a value"
    raise DataError(f"{data_key_of(name, value, data)} holds {shown} at index {first}, outside the support "
                    f"{support} of its distribution ({len(bad)} such entries)")


def check_left_at_none(latent: Mapping, fn: Callable, data: Mapping, role: str = "model") -> None:
    """A latent site named after an argument left at None is data the run was not given: with
    ``obs=None`` the site is sampled instead of observed."""
    left = [n for n in args_left_at_none(fn, data) if n in latent]
    if left:
        raise DataError(f"data has no key(s) {left}: the {role}'s argument(s) of that name were left at None, so "
                        f"site(s) {left} would be sampled as latent instead of observed")


def check_rank(latent: Mapping[str, tuple], rank: int | None, name: str) -> None:
    """A low-rank guide's ``rank`` is at most the number of latent dimensions (``latent``: site -> shape)."""
    dims = int(sum(np.prod(shape, dtype=int) for shape in latent.values()))
    if rank is not None and rank > dims:
        raise OptionError(f"rank={rank} for guide='lowrank' is above the {dims} latent dimension(s) of {name!r} "
                          f"(sites {sorted(latent)}); use rank <= {dims}, or guide='mvn' for a full-rank covariance")
