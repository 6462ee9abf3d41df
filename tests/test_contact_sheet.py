"""core.contact_sheet: labels of narrow tiles wrap into taller strips instead of being cut off."""

from __future__ import annotations

import numpy as np
import pytest

from core import contact_sheet
from core.contact_sheet import GAP, LABEL_HEIGHT, PAPER, make_contact_sheet, sheet_size

LABEL = "LBSMatte over a new background"


def _ink(region: np.ndarray) -> float:
    """Coverage of the label's text in ``region`` (the labels are drawn in 0.92 over PAPER)."""
    return float(((region[..., 0] - PAPER) / (0.92 - PAPER)).clip(0, 1).sum())


def _assert_font() -> None:
    # matplotlib is a requirement and ships DejaVu Sans: without the font the sheets lose their
    # labels without a word (_font logs at debug level), so its absence fails rather than skips.
    assert contact_sheet._font() is not None, "no font for labels: matplotlib's DejaVu Sans did not load"


def test_a_label_wider_than_a_40_px_tile_wraps_whole_above_it() -> None:
    _assert_font()
    whole = float(contact_sheet._text_bitmap(LABEL).sum())
    image = np.full((30, 40), 0.5, np.float32)
    sheet = make_contact_sheet([(LABEL, image)])

    assert sheet.shape[:2] == sheet_size(30, 40, 1, labels=[LABEL])
    strip = sheet.shape[0] - 2 * GAP - 30
    assert strip > LABEL_HEIGHT  # more than one line
    lines = contact_sheet._wrap(LABEL, 36)
    assert "".join(lines).replace(" ", "") == LABEL.replace(" ", "") and all(contact_sheet._text_width(line) <= 36 for line in lines)
    # All of the text is on the sheet (cut at the tile's edge, most of it would be missing) ...
    assert _ink(sheet[GAP:GAP + strip, GAP:GAP + 40]) == pytest.approx(whole, rel=0.05)
    assert _ink(sheet[GAP:GAP + strip, GAP + 38:GAP + 40]) == 0  # a 2-px margin at the tile's right edge
    # ... and none of it over the image, which is whole below the strip.
    np.testing.assert_array_equal(sheet[GAP + strip:GAP + strip + 30, GAP:GAP + 40], 0.5)


def test_labels_that_fit_keep_one_line_strips() -> None:
    assert sheet_size(400, 600, 8, columns=4, labels=["plate", LABEL]) == sheet_size(400, 600, 8, columns=4)
    assert make_contact_sheet([("plate", np.zeros((50, 200), np.float32))]).shape[0] == 2 * GAP + LABEL_HEIGHT + 50


def test_a_label_that_just_fits_keeps_one_line_and_a_tile_narrower_than_a_letter_gets_one_a_line() -> None:
    _assert_font()
    width = contact_sheet._text_width("plate")
    assert contact_sheet._wrap("plate", width) == ["plate"]
    assert contact_sheet._wrap("plate", width - 1) == ["plat", "e"]
    assert contact_sheet._wrap("ab", 1) == ["a", "b"]  # no empty line before the first letter
