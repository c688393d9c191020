"""advad — adversarial anomaly detection: ALAD, RCGAN, MAESI, AMA, ARN and their baselines."""

__version__ = "0.1.0"

from advad.base import BaseDetector, InputError  # noqa: E402
from advad.models import list_models, load, make_detector  # noqa: E402
from advad.models.ae import AutoEncoder  # noqa: E402
from advad.models.alad import ALAD  # noqa: E402
from advad.models.ama import AMA  # noqa: E402
from advad.models.arn import ARN  # noqa: E402
from advad.models.maesi import MAESI  # noqa: E402
from advad.models.rcgan import RCGAN  # noqa: E402
from advad.models.classical import IForest, OCSVM  # noqa: E402
from advad.models.anogan import AnoGAN  # noqa: E402
from advad.models.dagmm import DAGMM  # noqa: E402
from advad.models.deepsvdd import DeepSVDD  # noqa: E402
from advad.models.dsebm import DSEBMEnergy, DSEBMReconstruction  # noqa: E402
from advad.models.dcae import DCAE  # noqa: E402
from advad.models.fencegan import FenceGAN  # noqa: E402
from advad.models.ganomaly import GANomaly  # noqa: E402
from advad.models.skip_ganomaly import SkipGANomaly  # noqa: E402
from advad.serialization import ModelFileError  # noqa: E402

__all__ = ["ALAD", "AMA", "ARN", "AnoGAN", "AutoEncoder", "DAGMM", "DCAE", "DeepSVDD", "DSEBMEnergy", "DSEBMReconstruction", "FenceGAN", "GANomaly", "MAESI", "RCGAN", "SkipGANomaly", "BaseDetector", "IForest", "InputError", "ModelFileError", "OCSVM", "list_models", "load",
           "make_detector", "__version__"]
