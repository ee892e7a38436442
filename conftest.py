"""Test configuration shared by the unit tests and the notebooks that nbval runs.

Tests always run in the smoke profile (seconds per notebook, no network): nobody has to
remember to set LRLAB_PROFILE. The notebook kernels that nbval starts inherit this environment.
"""

import os

os.environ["LRLAB_PROFILE"] = "smoke"
os.environ.setdefault("MPLBACKEND", "Agg")
