"""advad — adversarial anomaly detection: ALAD, RCGAN, MAESI, AMA, ARN and their baselines."""

__version__ = "0.1.0"
