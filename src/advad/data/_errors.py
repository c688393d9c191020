"""Error and warning classes of :mod:`advad.data`."""

from __future__ import annotations


class DatasetError(Exception):
    """Base class of every data-layer error."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A raw file a dataset needs is not in the data folder.

    Attributes: ``dataset``, ``file`` (relative path), ``folder`` (the folder searched).
    """

    def __init__(self, dataset: str, file: str, folder: str, *, url: str | None = None):
        self.dataset = dataset
        self.file = file
        self.folder = folder
        self.url = url
        msg = (
            f"dataset {dataset!r} needs the file {file!r}, which is not in the data folder "
            f"{folder} (set by $ADVAD_DATA, default ~/.cache/advad); "
            f"run `advad data fetch {dataset}` to download it"
            + (f" from {url}" if url else "")
            + ", or point ADVAD_DATA at a folder that holds it"
        )
        super().__init__(msg)

    def __reduce__(self):  # keep picklable (multiprocessing executors)
        return (type(self), (self.dataset, self.file, self.folder), {"url": self.url})


class DatasetChecksumError(DatasetError, ValueError):
    """A raw file's hash differs from the published one."""

    def __init__(self, dataset: str, path: str, expected: str, actual: str, *, hint: str | None = None):
        self.dataset = dataset
        self.path = path
        self.expected = expected
        self.actual = actual
        msg = (
            f"checksum mismatch for {path} (dataset {dataset!r}): expected {expected}, got {actual}. "
            + (hint or f"The file is corrupt, truncated or a different version: delete it and run "
               f"`advad data fetch {dataset}`.")
        )
        super().__init__(msg)

    def __reduce__(self):
        return (type(self), (self.dataset, self.path, self.expected, self.actual))


class UnverifiedFileWarning(UserWarning):
    """A raw file was used or downloaded although no published checksum is known for it."""
