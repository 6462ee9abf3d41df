"""LBSMatte core: learning-based sampling matting (background -> foreground -> alpha).

This package never imports ``nuke`` or Qt.
"""

from __future__ import annotations

__version__ = "0.1.0"
