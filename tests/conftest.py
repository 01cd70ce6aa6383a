"""Test setup: the data directory defaults to ../shared/data beside the repository."""
import os
import warnings
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
os.environ.setdefault("PPL_DATA_DIR", str(SHARED_DATA))


@pytest.fixture(autouse=True)
def _quiet_inference_warnings():
    """Diagnostic warnings are asserted where they matter; elsewhere they are noise."""
    from inference.api import InferenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)
        yield
