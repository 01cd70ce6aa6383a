"""Test setup: the data directory defaults to ../shared/data beside the repository."""
import os
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
os.environ.setdefault("PPL_DATA_DIR", str(SHARED_DATA))
