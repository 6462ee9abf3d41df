"""What the package says of its own terms and of what it ships: LICENSE and NOTICE travel with it,
every shipped bundle says on which data it was trained and under which terms, a fine-tune carries
its parent's terms on, and no picture of the shared (research-only) data set is in the checkout."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.weights import DATA_TERMS, Bundle, load_bundle, save_bundle

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted([ROOT / "core" / "bundles" / "default" / "manifest.json",
                  *(ROOT / "docs").glob("**/bundle/manifest.json")])


@pytest.mark.parametrize("manifest", SHIPPED, ids=lambda p: p.relative_to(ROOT).parent.as_posix())
def test_every_shipped_bundle_says_its_training_data_is_not_cleared_for_commercial_use(manifest: Path) -> None:
    # The networks were trained on alphamatting.com's research benchmark and on background photos
    # with research-only or no stated terms (../shared/data/SOURCES.md): a legal review reading the
    # manifest must see that, not only the objects' names.
    m = json.loads(manifest.read_text(encoding="utf-8"))
    terms = m.get(DATA_TERMS)
    assert isinstance(terms, dict), f"{manifest}: no {DATA_TERMS}"
    assert terms["summary"].startswith("NOT CLEARED FOR COMMERCIAL USE"), terms["summary"]
    assert "alphamatting.com" in terms["summary"] and "Berkeley" in terms["summary"]
    sources = " ".join(s["data"] for s in terms["sources"])
    for name in m["training"]["data"]["objects"]:
        assert name in sources, name
    assert all(s.get("terms") for s in terms["sources"])


def test_weights_show_prints_the_training_data_terms_whole() -> None:
    text = load_bundle("default").summary()
    line = next(x for x in text.splitlines() if x.startswith("  training data terms: "))
    assert "NOT CLEARED FOR COMMERCIAL USE" in line and line.endswith("See NOTICE, section 1.")


def test_the_nuke_panel_shows_the_training_data_terms() -> None:
    from nuke_plugin.bundles import find_bundles

    default = next(b for b in find_bundles(str(ROOT / "core"), environ={}) if b.name == "default")
    assert any(x.startswith("training data terms: NOT CLEARED FOR COMMERCIAL USE") for x in default.summary_lines())


def test_a_fine_tune_carries_its_parents_training_data_terms_on(tmp_path: Path, small_bundle: Bundle) -> None:
    parent = save_bundle(tmp_path / "parent", small_bundle.load_networks(), name="parent", description="d",
                         trained=False, data_terms={"summary": "research only", "sources": []})
    child = save_bundle(tmp_path / "child", parent.load_networks(), name="show_x", description="fine-tune",
                        parent=parent, trained=False)
    terms = load_bundle(str(child.path)).manifest[DATA_TERMS]
    assert terms["summary"].startswith("trained further from 'parent', whose terms apply: research only")
    assert terms["parent"]["bundle"] == "parent" and terms["parent"]["summary"] == "research only"
    assert terms["parent"]["sha256"] == parent.manifest_sha256()
    assert "training data terms: trained further from 'parent'" in child.summary()
    # a bundle that records none says so rather than nothing
    assert "training data terms: not recorded" in small_bundle.summary()


def test_the_sdist_and_the_wheel_carry_licence_and_notice(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "egg_info",
                    "--egg-base", str(tmp_path)], cwd=ROOT, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
                   check=True, capture_output=True, timeout=120)
    info = tmp_path / "lbsmatte.egg-info"
    sources = set((info / "SOURCES.txt").read_text(encoding="utf-8").split())
    assert {"LICENSE", "NOTICE"} <= sources
    pkg_info = (info / "PKG-INFO").read_text(encoding="utf-8")
    # License-File: what setuptools copies into the wheel's .dist-info
    assert "License-File: LICENSE" in pkg_info and "License-File: NOTICE" in pkg_info
    assert "License: Proprietary" in pkg_info


def test_no_picture_of_the_shared_data_set_is_in_the_checkout() -> None:
    # docs/ once held two pictures of alphamatting.com's GT16 (photo, trimap, alpha), which no
    # licence lets LBSMatte redistribute; the shared data is read from ../shared/data, never copied.
    done = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    pictures = [ROOT / f for f in done.stdout.split() if f.lower().endswith((".png", ".jpg", ".jpeg"))]
    assert not [p for p in pictures if "gt" in p.name.lower()], pictures  # GT01..GT27, alphamatting's names
    data = Path(os.environ.get("LBSMATTE_DATA", ROOT.parent / "shared" / "data"))
    if not data.is_dir():
        pytest.skip(f"no shared data set at {data} to compare the pictures with")
    shared = {hashlib.sha256(p.read_bytes()).hexdigest() for p in data.rglob("*") if p.is_file()}
    copied = [p.relative_to(ROOT).as_posix() for p in pictures if hashlib.sha256(p.read_bytes()).hexdigest() in shared]
    assert not copied, copied
