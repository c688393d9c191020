"""Run the `advad` CLI with the torch detectors registered (until `advad.models` imports them itself).

Usage: python benchmarks/advad_cli.py bench --models alad ... (same arguments as `advad`).
"""
import sys

import advad.models.ae  # noqa: F401  (registers "ae")
import advad.models.alad  # noqa: F401  (registers "alad")
from advad.cli import main

if __name__ == "__main__":
    sys.exit(main())
