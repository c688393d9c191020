"""Model names (CLI and benchmarks) → detector classes, and `load` for model files."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable

from advad.base import BaseDetector
from advad.serialization import ModelFileError, read_model_file

_MODELS: dict[str, type[BaseDetector]] = {}


def register(name: str) -> Callable[[type[BaseDetector]], type[BaseDetector]]:
    """Class decorator: make a detector available as `name` to `make_detector`, the CLI and `load`."""

    def decorate(cls: type[BaseDetector]) -> type[BaseDetector]:
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is already registered to {_MODELS[name].__name__}")
        cls.model_name = name
        _MODELS[name] = cls
        return cls

    return decorate


def list_models() -> list[str]:
    return sorted(_MODELS)


def get_model_class(name: str) -> type[BaseDetector]:
    if name.startswith("pyod:"):
        from advad.models.pyod_adapter import PyODDetector

        return PyODDetector
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}, "
                         "or pyod:<ClassName> for an installed PyOD detector") from None


def check_param_names(name: str, names: Iterable[str]) -> None:
    """Raise ValueError if model `name` has no parameter called one of `names` (listing the ones it has)."""
    valid = get_model_class(name)().get_params(deep=False)
    unknown = sorted(set(names) - set(valid))
    if unknown:
        raise ValueError(f"{name} has no parameter(s) {unknown}; its parameters are {sorted(valid)}")


def make_detector(name: str, **params: Any) -> BaseDetector:
    """Build the detector registered as `name` (or `pyod:<Class>`) with keyword parameters."""
    if name.startswith("pyod:"):
        params = {"detector": name.split(":", 1)[1], **params}
    check_param_names(name, params)
    return get_model_class(name)(**params)


def load(path: str | os.PathLike) -> BaseDetector:
    """Load a detector written by `save`. Never unpickles: safe on files from others."""
    meta, arrays = read_model_file(path)
    name = meta.get("model")
    if name not in _MODELS:
        raise ModelFileError(f"{path} holds model {name!r}, which this advad does not know "
                             f"(known: {', '.join(list_models())})")
    try:
        detector = make_detector(name, **meta.get("params", {}))
        detector._restore(meta, arrays)
    except ModelFileError:
        raise
    except (KeyError, ValueError, TypeError, RuntimeError) as err:
        raise ModelFileError(f"{path} could not be restored as {name!r}: {type(err).__name__}: {err}") from err
    return detector
