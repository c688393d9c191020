"""Detectors: one module per method, plus the baselines. Importing this package registers them all."""

from advad.models import ae, alad, ama, arn, classical, maesi, rcgan  # noqa: F401  (registration)
from advad.models import anogan, dagmm, deepsvdd, dsebm  # noqa: F401  (registration: the deep baselines)
from advad.models import dcae, fencegan, ganomaly, skip_ganomaly  # noqa: F401  (registration: GAN / autoencoder baselines)
from advad.models.registry import check_param_names, get_model_class, list_models, load, make_detector, register

__all__ = ["check_param_names", "get_model_class", "list_models", "load", "make_detector", "register"]
