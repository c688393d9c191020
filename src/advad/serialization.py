"""The `.advad` model file: a zip of `advad.json` (metadata) and `arrays.safetensors` (arrays).

Nothing here can execute code from a file: JSON and safetensors are data-only formats, the zip must
hold exactly those two members, and writes are atomic (a crash never leaves a half-written file).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays

FORMAT_NAME = "advad-model"
FORMAT_VERSION = 1
META_MEMBER = "advad.json"
ARRAYS_MEMBER = "arrays.safetensors"


class ModelFileError(ValueError):
    """A model file is missing, damaged, tampered with, or from an incompatible version."""


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0)
        os.umask(mask)
        return mask


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """A file opened on a temporary file in `path`'s folder, moved onto `path` (`os.replace`) when the
    block ends without an error and deleted otherwise: readers see the old file or the whole new one.
    For writing in pieces (e.g. streamed scores); `mode` "wb" or "w" (text, universal newlines off)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": ""})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the mode a plain open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and `os.replace`."""
    with atomic_writer(path) as handle:
        handle.write(data)


def write_model_file(path: str | os.PathLike, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Atomically write a model file holding `meta` (JSON-able) and `arrays`."""
    try:
        meta_bytes = json.dumps({"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **meta},
                                indent=1, sort_keys=True).encode()
    except TypeError as err:
        raise ModelFileError(f"cannot save: model metadata is not JSON-serialisable ({err})") from err
    arrays_bytes = save_arrays({k: np.ascontiguousarray(v) for k, v in arrays.items()})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(META_MEMBER, meta_bytes)
        # weights barely compress (≈ 9 %) and deflating 100 MB takes seconds: store them as they are
        archive.writestr(ARRAYS_MEMBER, arrays_bytes, compress_type=zipfile.ZIP_STORED)
    atomic_write_bytes(path, buffer.getvalue())


def read_model_file(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and check a model file; raise `ModelFileError` with the reason when it is not usable."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            members = sorted(archive.namelist())
            if members != sorted([META_MEMBER, ARRAYS_MEMBER]):
                raise ModelFileError(
                    f"{path} is not an advad model file: expected exactly {META_MEMBER} and "
                    f"{ARRAYS_MEMBER}, found {members}. Nothing was loaded.")
            meta_bytes = archive.read(META_MEMBER)
            arrays_bytes = archive.read(ARRAYS_MEMBER)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise ModelFileError(f"{path} is not a readable advad model file (truncated or not a zip: {err})") from err
    except (zlib.error, NotImplementedError, ValueError) as err:  # corrupted deflate data / header fields
        raise ModelFileError(f"{path} is damaged: its zip members cannot be decompressed ({err})") from err
    try:
        meta = json.loads(meta_bytes)
    except (ValueError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path}: {META_MEMBER} is not valid JSON ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not an advad model file (format tag missing)")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} uses model-file format {version!r}; this advad reads format ≤ {FORMAT_VERSION}. "
            "Upgrade advad to load it.")
    try:
        arrays = load_arrays(arrays_bytes)
    except (SafetensorError, ValueError, OSError) as err:
        raise ModelFileError(f"{path}: {ARRAYS_MEMBER} is damaged ({err})") from err
    return meta, arrays
