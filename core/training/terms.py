"""Under which terms the data LBSMatte's own networks learn from may be used.

``lbsmatte train`` and ``tools/cross_validate.py`` record these in a bundle's manifest
(``"training_data_terms"``) when they train on the shared data set; a show's own data's terms
LBSMatte cannot know (a fine-tune carries its parent's on, :func:`core.weights.inherited_data_terms`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: alphamatting.com's object names (``GT01`` .. ``GT27``): training on them binds the bundle to
#: that benchmark's terms, wherever the folder was copied to.
ALPHAMATTING_NAME = re.compile(r"GT\d\d")


def is_shared_data(root: Path, objects: list[str]) -> bool:
    """Whether ``lbsmatte train``'s data root ``root`` (its ``alphamatting/`` objects ``objects``
    and its ``backgrounds/``) is the shared data set: its ``SOURCES.md`` beside them, or objects
    named as alphamatting.com names them."""
    if (Path(root) / "SOURCES.md").is_file():
        return True
    return bool(objects) and all(ALPHAMATTING_NAME.fullmatch(name) for name in objects)


def shared_data_terms(objects: list[str]) -> dict[str, Any]:
    """The ``"training_data_terms"`` of a bundle trained on ``objects`` of the shared data set
    (alphamatting.com's training set and the training split of its background photos; the data
    set's SOURCES.md says where each came from). NOTICE, section 1, says the same."""
    return {
        "summary": (
            "NOT CLEARED FOR COMMERCIAL USE. Trained on photographs, measured alpha mattes and trimaps of "
            f"{len(objects)} objects of the alphamatting.com benchmark's training set (distributed for research "
            "benchmarking, no licence stated: redistribution and commercial use unclear) composited over 251 "
            "background photographs, most from research benchmark sets with no licence stated or with "
            "non-commercial research terms (64 from the Berkeley Segmentation Dataset). Whether networks trained "
            "on them may be used on commercial work has not been cleared: a studio's legal review should decide "
            "before this bundle, or one fine-tuned from it, is used on a show. See NOTICE, section 1."
        ),
        "sources": [
            {"data": "alphamatting.com training set, low resolution: " + ", ".join(objects),
             "cite": "Rhemann, Rother, Wang, Gelautz, Kohli, Rott: A Perceptually Motivated Online Benchmark for "
                     "Image Matting, CVPR 2009",
             "terms": "distributed for research benchmarking; no licence stated; redistribution and commercial use "
                      "unclear"},
            {"data": "64 background photographs of CBSD68 (Berkeley Segmentation Dataset, Corel)",
             "terms": "non-commercial research and education"},
            {"data": "68 of Sun and Hays's 80 scene photographs, 45 of Urban100 (Flickr), 16 of McMaster",
             "terms": "no licence stated"},
            {"data": "22 photographs of the Kodak Lossless True Color Image Suite",
             "terms": "commonly described as released for unrestricted use; no licence file"},
            {"data": "36 wallpapers of Debian's lomiri-wallpapers, mate-backgrounds, plasma-workspace-wallpapers",
             "terms": "CC0-1.0, CC-BY-4.0, CC-BY-SA-3.0/4.0, GPL-2+, LGPLv3 (attribution in debian/copyright)"},
            {"data": "procedural foregrounds (core/training/procedural.py)", "terms": "made by LBSMatte"},
        ],
    }
