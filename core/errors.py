"""Exceptions raised by LBSMatte.

Every error a user can cause derives from :class:`LBSMatteError`, so the command line
tool and the Nuke layer can show its message without a traceback.
"""

from __future__ import annotations


class LBSMatteError(Exception):
    """Base class of every error LBSMatte raises on purpose."""


class InputError(LBSMatteError, ValueError):
    """A plate, trimap or path given by the user cannot be used (names the file or value)."""


class TrimapError(InputError):
    """A trimap cannot be interpreted (wrong size, channel or encoding)."""


class WeightsError(LBSMatteError):
    """A weights bundle is missing, damaged or does not match the networks."""


class OutputError(LBSMatteError):
    """An output location cannot be written."""


class ResourceError(LBSMatteError):
    """A frame needs more memory than the machine (or the GPU) has free; says how much of each.
    In training: a step that ran out of GPU memory, naming the batch and crop sizes."""


class TrainingError(LBSMatteError):
    """A training run that cannot go on (a loss that is no longer finite); its checkpoints are kept."""
