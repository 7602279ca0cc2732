"""Test configuration shared by the unit tests and ``pytest --nbval notebooks/``.

Notebooks run in the smoke profile (bundled mini set, seconds per chapter); the kernel
that nbval starts inherits this environment.
"""

import os

os.environ["D2LCNN_PROFILE"] = "smoke"
