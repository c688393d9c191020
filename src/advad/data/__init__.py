"""advad.data — benchmark datasets: registry, raw files (checksum, fetch), parsers, embedded and
synthetic sets. The bottom layer of advad: imports nothing else from advad and never imports torch.

>>> from advad.data import load_dataset, list_datasets
>>> ds = load_dataset("thyroid")          # reads $ADVAD_DATA/odds/thyroid.mat, checks its sha256
>>> ds.X.shape, int(ds.y.sum()), ds.anomaly_ratio
((3772, 6), 93, 0.025)
"""

from ._errors import DatasetChecksumError, DatasetError, DatasetNotFoundError, UnverifiedFileWarning
from ._files import RawFile, data_home, file_hash
from .dataset import Dataset
from .registry import (
    DatasetSpec,
    clear_cache,
    dataset_status,
    fetch,
    get_spec,
    list_datasets,
    load_dataset,
)

__all__ = [
    "Dataset", "DatasetSpec", "RawFile", "load_dataset", "list_datasets", "get_spec", "fetch", "data_home",
    "dataset_status", "clear_cache", "file_hash", "DatasetError", "DatasetNotFoundError",
    "DatasetChecksumError", "UnverifiedFileWarning",
]
