"""Error types shared by the model and inference layers.

Every error names its culprit (the key, site, option or device at fault) and,
where there is a fixed set of valid values, lists them.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class PPLError(Exception):
    """Base class for the errors this project raises on bad input."""


MAX_LISTED = 30  # valid choices an error lists; beyond, it counts them


class UnknownChoiceError(PPLError, ValueError):
    """A name (model, method, backend, option, guide, ...) that is not one of the valid choices."""

    def __init__(self, kind: str, value: object, choices: Iterable[str], message: str | None = None):
        """``message``, if given, replaces the generated one (which says only "unknown")."""
        self.kind, self.value, self.choices = kind, value, sorted(choices)
        if len(self.choices) > MAX_LISTED:  # eighty model names would bury the one line that matters
            near = ([c for c in self.choices if str(value).lower() in c.lower()]
                    or difflib.get_close_matches(str(value), self.choices, n=5, cutoff=0.3))[:5]
            listed = f"{len(self.choices)}" + (f", among them {', '.join(near)}" if near else "") + (
                " (`ppl models` lists them all)" if kind == "model" else "")
        else:
            listed = ", ".join(self.choices) or "(none)"
        msg = f"unknown {kind} {value!r}; valid choices: {listed}"
        close = difflib.get_close_matches(str(value), self.choices, n=1)
        if close:
            msg += f" (did you mean {close[0]!r}?)"
        super().__init__(message or msg)

    def __reduce__(self):  # pickles whole, as worker processes send it: Exception's default passes args only
        return type(self), (self.kind, self.value, self.choices, str(self))


class DataError(PPLError, ValueError):
    """Data missing a key, with the wrong shape, or holding NaN/inf; the message names the key."""


class SiteMismatchError(PPLError, ValueError):
    """Model and guide disagree on their latent sample sites; the message names the sites."""


class ResultFileError(PPLError, ValueError):
    """A file that is not a result written by ``InferenceResult.save`` (truncated, empty, foreign);
    the message names the file and what is wrong with it."""


class CheckpointError(PPLError, ValueError):
    """A checkpoint that cannot serve this run: unreadable, written by another run, or in use by another process."""


class OptionError(PPLError, ValueError):
    """An option value that does not fit the model it is given with (a rank above the number of latent
    dimensions); the message names the option and the model's figure."""


class DeviceError(PPLError, RuntimeError):
    """The requested device does not exist on this machine."""


class DataNotFoundError(PPLError, FileNotFoundError):
    """A data file is missing from the data directory."""


class TrainingError(PPLError, RuntimeError):
    """Optimization produced a non-finite loss (or failed) at ``step``.

    ``result`` holds what was learned before: the parameters that gave the last finite
    loss (``last_loss``, at ``step - 1``) and the losses up to the failure (no draws).
    """

    def __init__(self, step: int, last_loss: float | None, result, cause: str = "the loss is not finite"):
        self.step, self.last_loss, self.result, self.cause = step, last_loss, result, cause
        last = f"{last_loss:.6g} at step {step - 1}" if last_loss is not None else "none"
        super().__init__(f"training stopped at step {step}: {cause}; last finite loss: {last}. "
                         "The parameters of the last good step are kept in this error's .result.params.")

    def __reduce__(self):  # pickles whole, as worker processes send it: Exception's default passes args only
        return type(self), (self.step, self.last_loss, self.result, self.cause)
