"""Raw files: where they live, checksum verification (cached per process) and download."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import urllib.parse
import warnings
from dataclasses import dataclass
from pathlib import Path

from ._errors import DatasetChecksumError, DatasetNotFoundError, UnverifiedFileWarning

DEFAULT_HOME = "~/.cache/advad"


@dataclass(frozen=True)
class RawFile:
    """One published raw file of a dataset.

    ``path`` is relative to the data folder (the layout of ``shared/datasets/MANIFEST.tsv``);
    ``hash`` is ``"sha256:<hex>"`` or ``"md5:<hex>"`` (md5 only where no sha256 is published), or
    ``None`` when no checksum is known (then nothing is verified and a warning says so).
    ``fetch_default``: fetched by ``fetch(name)`` without ``all_files=True``.
    """

    role: str
    path: str
    hash: str | None
    url: str
    size: int | None = None
    note: str = ""
    fetch_default: bool = True

    @property
    def sha256(self) -> str | None:
        if self.hash and self.hash.startswith("sha256:"):
            return self.hash.split(":", 1)[1]
        return None


def data_home() -> Path:
    """The data folder: ``$ADVAD_DATA`` (read at call time) or ``~/.cache/advad``."""
    env = os.environ.get("ADVAD_DATA", "").strip()
    return Path(env or DEFAULT_HOME).expanduser()


def file_hash(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_verified: dict[tuple, str] = {}
_verified_lock = threading.Lock()


def _stat_key(path: Path, expected: str | None) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, expected)


def verify_file(dataset: str, path: Path, expected: str | None) -> str:
    """Check ``path`` against ``expected`` (``"sha256:..."``/``"md5:..."``); return the actual hash.

    Verification results are cached per process, keyed by path, size and mtime, so repeated loads
    do not re-hash the file. ``expected=None``: returns the sha256 and warns (nothing to verify).
    """
    key = _stat_key(path, expected)
    with _verified_lock:
        if key in _verified:
            return _verified[key]
    if expected is None:
        actual = "sha256:" + file_hash(path)
        warnings.warn(
            f"{path} (dataset {dataset!r}) has no published checksum in advad's registry, so it "
            f"was NOT verified; its {actual} (record it with your results)",
            UnverifiedFileWarning,
            stacklevel=3,
        )
    else:
        algo, want = expected.split(":", 1)
        actual = f"{algo}:{file_hash(path, algo)}"
        if actual.lower() != expected.lower():
            raise DatasetChecksumError(dataset, str(path), expected, actual)
    with _verified_lock:
        _verified[key] = actual
    return actual


def locate(dataset: str, raw: RawFile, folder: Path | None = None, *, verify: bool = True) -> Path:
    """Return the verified path of ``raw`` under ``folder`` (default: :func:`data_home`)."""
    folder = Path(folder) if folder is not None else data_home()
    path = folder / raw.path
    if not path.is_file():
        raise DatasetNotFoundError(dataset, raw.path, str(folder), url=raw.url)
    if verify:
        verify_file(dataset, path, raw.hash)
    return path


def _copy_downloader(url: str, output_file, pooch=None, check_only: bool = False):
    """pooch downloader for ``file://`` URLs and plain local paths (offline mirrors, tests)."""
    parsed = urllib.parse.urlparse(url)
    src = Path(urllib.parse.unquote(parsed.path)) if parsed.scheme == "file" else Path(url)
    if check_only:
        return src.is_file()
    if not src.is_file():
        raise FileNotFoundError(f"mirror file {src} does not exist")
    if hasattr(output_file, "write"):
        with open(src, "rb") as fh:
            shutil.copyfileobj(fh, output_file)
    else:
        shutil.copyfile(src, output_file)
    return None


def download_file(dataset: str, raw: RawFile, folder: Path, *, mirror: str | os.PathLike | None = None,
                  progressbar: bool = False) -> Path:
    """Download ``raw`` into ``folder`` at its MANIFEST path with pooch, verifying its hash.

    ``mirror``: a local folder (or ``file://``/``http(s)://`` URL prefix) laid out like the data
    folder, used instead of the public URL.
    """
    import pooch

    dest = folder / raw.path
    if dest.is_file():
        try:
            verify_file(dataset, dest, raw.hash)
            return dest
        except DatasetChecksumError:
            pass  # pooch re-downloads a file whose hash differs
    downloader = None
    if mirror is not None:
        m = str(mirror)
        if m.startswith(("http://", "https://", "ftp://")):
            url = m.rstrip("/") + "/" + urllib.parse.quote(raw.path)
        else:
            base = Path(urllib.parse.urlparse(m).path) if m.startswith("file://") else Path(m)
            url = str(base / raw.path)
            downloader = _copy_downloader
    else:
        url = raw.url
        if url.startswith("file://"):
            downloader = _copy_downloader
    if raw.hash is None:
        warnings.warn(
            f"no published checksum is known for {raw.path} (dataset {dataset!r}): the download "
            "from " + url + " cannot be verified" + (f" ({raw.note})" if raw.note else ""),
            UnverifiedFileWarning,
            stacklevel=3,
        )
    try:
        out = pooch.retrieve(url, known_hash=raw.hash, fname=dest.name, path=dest.parent,
                             downloader=downloader, progressbar=progressbar)
    except ValueError as exc:
        text = str(exc)
        if "hash" in text.lower():
            actual = "?"
            for token in text.replace("'", " ").split():
                if len(token) in (32, 64) and all(c in "0123456789abcdef" for c in token.lower()) \
                        and token.lower() not in (raw.hash or "").lower():
                    actual = token
            algo = (raw.hash or "sha256:").split(":", 1)[0]
            raise DatasetChecksumError(
                dataset, str(dest), raw.hash or "?", f"{algo}:{actual}",
                hint=f"The download from {url} was rejected and not kept; the source may have "
                     "changed or the transfer was corrupted. Try again, or fetch from another mirror.",
            ) from exc
        raise
    path = Path(out)
    verify_file(dataset, path, raw.hash)
    return path
