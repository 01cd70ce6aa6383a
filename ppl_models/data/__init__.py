"""Real data sets, read from a configurable data directory and checked against sha256 sums."""
from ppl_models.data.paths import DATA_DIR_ENV, data_dir, resolve, set_data_dir

__all__ = ["DATA_DIR_ENV", "data_dir", "resolve", "set_data_dir"]
