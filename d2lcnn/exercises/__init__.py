"""Exercises a learner can check: ``d2l.check("<chapter>.<exercise>", answer)``.

``check`` prints one line, right or wrong with a hint, and returns True/False (None
for a blank answer). The checkers live one chapter group per module (``classic``:
LeNet to NiN; ``modern``: GoogLeNet to MobileNet) and compute their expected values
from the chapters' nets.

Example:
    >>> check("vgg.field3", None)
    vgg.field3: not answered yet
"""

from .core import Exercise, check, exercise, exercises

__all__ = ["Exercise", "check", "exercise", "exercises"]
