"""Weights bundles: saving, loading, verification, search path (SPEC §6, §8)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

import core.weights as weights
from core.errors import OutputError, WeightsError
from core.nets import ROLES, build_network, network_config
from core.weights import (
    Bundle,
    default_bundle_path,
    find_bundles,
    has_trained_default,
    load_bundle,
    save_bundle,
    verify_bundle,
)

# -- helpers ---------------------------------------------------------------------------------


def copy_bundle(bundle: Bundle, dest: Path, name: str | None = None, **manifest_changes: Any) -> Path:
    """Copy a bundle folder (the session fixture stays untouched); optionally rename/edit the manifest."""
    shutil.copytree(bundle.path, dest)
    if name is not None or manifest_changes:
        manifest = json.loads((dest / "manifest.json").read_text())
        if name is not None:
            manifest["name"] = name
        manifest.update(manifest_changes)
        (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def edit_manifest(folder: Path, edit: Any) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _TouchOnUnpickle:
    """Unpickling this creates ``marker``: proof that a weights file was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.fixture
def isolated_search(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No packaged default, empty LBSMATTE_WEIGHTS_PATH: the test decides what exists."""
    fake_default = tmp_path / "package" / "bundles" / "default"
    monkeypatch.setattr(weights, "default_bundle_path", lambda: fake_default)
    monkeypatch.delenv(weights.WEIGHTS_PATH_ENV, raising=False)
    return fake_default


# -- save -> load ----------------------------------------------------------------------------


def test_roles_match_the_networks() -> None:
    assert weights.ROLES == ROLES


def test_round_trip_gives_identical_tensors_and_outputs(small_bundle: Bundle, make_small_networks: Any) -> None:
    originals = make_small_networks(seed=0)  # the same seed the fixture used
    bundle = load_bundle(small_bundle.path)
    assert bundle.name == "small-test"
    assert bundle.manifest == small_bundle.manifest
    m = bundle.manifest
    assert (m["format"], m["format_version"], m["trained"], m["parent"], m["colour"]) == (
        "lbsmatte-bundle", 1, False, None, "srgb"
    )
    loaded = bundle.load_networks("cpu")
    assert list(loaded) == ["background", "foreground", "alpha"]
    for role, net in loaded.items():
        entry = m["networks"][role]
        assert entry["file"] == f"{role}.safetensors"
        assert entry["sha256"] == sha256(bundle.path / entry["file"])
        assert entry["config"] == originals[role].config == bundle.config(role) == net.config
        assert entry["parameters"] == sum(p.numel() for p in originals[role].parameters())
        assert not net.training
        expected = originals[role].state_dict()
        got = net.state_dict()
        assert list(got) == list(expected)
        for key in expected:
            assert torch.equal(got[key], expected[key]), f"{role}.{key} differs after the round trip"
        x = torch.rand(1, net.in_channels, 32, 32, generator=torch.Generator().manual_seed(1))
        x[:, 3] = (x[:, 3] > 0.5).float()
        with torch.inference_mode():
            assert torch.equal(net(x), originals[role].eval()(x))


def test_saved_tensors_are_float32_contiguous_cpu(tmp_path: Path, make_small_networks: Any) -> None:
    nets = make_small_networks(seed=3)
    nets["alpha"] = nets["alpha"].double()  # float64 in memory -> float32 on disk
    bundle = save_bundle(tmp_path / "b", nets, name="b", description="dtype test", trained=False)
    header = weights._read_header(bundle.path / "alpha.safetensors")
    dtypes = {info["dtype"] for key, info in header.items() if not key.endswith("num_batches_tracked")}
    assert dtypes == {"F32"}
    net = load_bundle(bundle.path).load_network("alpha")
    assert all(p.dtype == torch.float32 for p in net.parameters())
    ref = nets["alpha"].state_dict()
    for key, value in net.state_dict().items():
        assert torch.equal(value, ref[key].to(value.dtype))



def test_a_saved_bundle_is_readable_as_the_users_other_files_are(tmp_path: Path, make_small_networks: Any) -> None:
    """safetensors writes 0600 files: a bundle trained by an artist must be readable by the farm."""
    import os

    old = os.umask(0o022)
    try:
        bundle = save_bundle(tmp_path / "b", make_small_networks(seed=3), name="b", description="modes", trained=False)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in bundle.path.iterdir()}
    assert modes == {name: 0o644 for name in ("alpha.safetensors", "background.safetensors",
                                              "foreground.safetensors", "manifest.json")}

def test_save_refuses_networks_without_config_or_roles(tmp_path: Path, make_small_networks: Any) -> None:
    nets = make_small_networks()
    with pytest.raises(WeightsError, match="missing alpha"):
        save_bundle(tmp_path / "a", {k: v for k, v in nets.items() if k != "alpha"}, name="a", description="")
    swapped = {**nets, "background": nets["foreground"]}
    with pytest.raises(WeightsError, match="configured as 'foreground'"):
        save_bundle(tmp_path / "b", swapped, name="b", description="")
    with pytest.raises(WeightsError, match="has no .config dict"):
        save_bundle(tmp_path / "c", {**nets, "alpha": torch.nn.Conv2d(10, 1, 3)}, name="c", description="")
    assert not any(tmp_path.iterdir())


def test_fine_tune_records_its_parent(tmp_path: Path, small_bundle: Bundle) -> None:
    nets = small_bundle.load_networks()
    child = save_bundle(
        tmp_path / "show", nets, name="show_x", description="fine-tuned on show X", version="2",
        parent=small_bundle, training={"iterations": 500, "data": "show X plates"},
    )
    parent_sha = sha256(small_bundle.path / "manifest.json")
    assert child.manifest["parent"] == {"name": "small-test", "sha256": parent_sha}
    assert load_bundle(child.path).manifest["parent"]["sha256"] == parent_sha
    assert child.manifest["version"] == "2"
    assert child.manifest["trained"] is True


def test_summary_tells_a_person_what_the_bundle_is(tmp_path: Path, small_bundle: Bundle) -> None:
    text = small_bundle.summary()
    assert text.splitlines()[0].startswith("small-test: tiny untrained networks")
    assert "parent: none" in text
    assert "trained: NO" in text
    for role in ROLES:
        count = small_bundle.manifest["networks"][role]["parameters"]
        assert f"{role}: " in text and f"{count:,} parameters" in text
    child = save_bundle(
        tmp_path / "show", small_bundle.load_networks(), name="show_x", description="show X fine-tune",
        parent=small_bundle, training={"iterations": 1200, "time": "2.5 h", "losses": {"alpha": 0.0123456}},
    )
    text = child.summary()
    assert "parent: small-test (manifest sha256 " in text
    assert "trained: yes" in text
    assert "iterations: 1200" in text and "time: 2.5 h" in text and "alpha=0.01235" in text
    assert "machine:" in text  # recorded automatically


# -- damage ----------------------------------------------------------------------------------


def test_byte_flip_is_a_bad_checksum(tmp_path: Path, small_bundle: Bundle) -> None:
    folder = copy_bundle(small_bundle, tmp_path / "flipped")
    file = folder / "foreground.safetensors"
    data = bytearray(file.read_bytes())
    data[-5] ^= 0x01  # inside the tensor data: the header stays valid
    file.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"'small-test'.*foreground\.safetensors: bad checksum"):
        load_bundle(folder)
    problems = verify_bundle(folder)
    assert len(problems) == 1 and "foreground.safetensors: bad checksum" in problems[0]
    # A Bundle that skipped load_bundle (e.g. from find_bundles) still checks before loading.
    stale = Bundle("small-test", folder, json.loads((folder / "manifest.json").read_text()))
    with pytest.raises(WeightsError, match="bad checksum"):
        stale.load_network("foreground")


def test_a_file_changed_after_its_bundle_was_verified_is_hashed_again(tmp_path: Path, small_bundle: Bundle,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # load_bundle remembers the verified files by size and mtime so that loading them costs no
    # second hash; a file replaced afterwards (same size, new mtime) must be checked again.
    import os

    import core.weights

    folder = copy_bundle(small_bundle, tmp_path / "changed")
    bundle = load_bundle(folder)
    hashed: list[str] = []
    sha256 = core.weights.file_sha256
    monkeypatch.setattr(core.weights, "file_sha256", lambda path: hashed.append(path.name) or sha256(path))
    bundle.load_network("background")
    assert hashed == []  # verified by load_bundle, unchanged: not hashed a second time
    file = folder / "alpha.safetensors"
    stamp = file.stat()
    data = bytearray(file.read_bytes())
    data[-5] ^= 0x01
    file.write_bytes(bytes(data))
    os.utime(file, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))  # a changed mtime, whatever the clock's grain
    with pytest.raises(WeightsError, match=r"alpha\.safetensors: bad checksum"):
        bundle.load_network("alpha")
    bundle.load_network("foreground")  # untouched files still load
    assert hashed == ["alpha.safetensors"]  # the changed file alone was hashed again


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickle_renamed_safetensors_is_refused_and_never_unpickled(
    tmp_path: Path, small_bundle: Bundle, writer: str
) -> None:
    # The payload works: unpickling a control copy does create its marker.
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(_TouchOnUnpickle(control)))
    assert control.exists()

    marker = tmp_path / "executed-marker"
    folder = copy_bundle(small_bundle, tmp_path / "evil")
    file = folder / "alpha.safetensors"
    if writer == "pickle":
        file.write_bytes(pickle.dumps({"alpha": _TouchOnUnpickle(marker)}))
    else:
        torch.save({"alpha": _TouchOnUnpickle(marker)}, file)  # a zip archive
    # Even with a matching checksum in the manifest it must be refused.
    edit_manifest(folder, lambda m: m["networks"]["alpha"].update(sha256=sha256(file)))

    with pytest.raises(WeightsError, match=r"'small-test'.*alpha\.safetensors: not a safetensors file"):
        load_bundle(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    with pytest.raises(WeightsError, match="not a safetensors file"):
        Bundle("evil", folder, manifest).load_network("alpha")
    assert any("not a safetensors file" in p for p in verify_bundle(folder))
    assert not marker.exists()


def test_missing_network_file(tmp_path: Path, small_bundle: Bundle) -> None:
    folder = copy_bundle(small_bundle, tmp_path / "missing")
    (folder / "background.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"'small-test'.*background\.safetensors is missing"):
        load_bundle(folder)


def test_truncated_file_is_damaged(tmp_path: Path, small_bundle: Bundle) -> None:
    folder = copy_bundle(small_bundle, tmp_path / "truncated")
    file = folder / "alpha.safetensors"
    file.write_bytes(file.read_bytes()[:-100])
    with pytest.raises(WeightsError, match=r"alpha\.safetensors: damaged safetensors file"):
        load_bundle(folder)


def _rewrite_header(file: Path, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` (same length) in a safetensors file's JSON header."""
    data = file.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = data[8 : 8 + n]
    assert old in header and len(old) == len(new)
    file.write_bytes(data[:8] + header.replace(old, new) + data[8 + n :])


@pytest.mark.parametrize(("old", "new", "expected"), [
    (b'"F32"', b'"F99"', r"tensor '.*' has unknown dtype 'F99'"),
    (b'"F32"', b'"F16"', r"tensor '.*': \d+ bytes for \d+ values of F16"),
])
def test_header_safetensors_itself_refuses_is_damaged_before_loading(
    tmp_path: Path, small_bundle: Bundle, old: bytes, new: bytes, expected: str
) -> None:
    """A header whose dtype safetensors does not know, or whose byte ranges do not hold its shapes,
    passed every check (checksum matching) and broke loading with safetensors' own traceback."""
    folder = copy_bundle(small_bundle, tmp_path / "odd")
    file = folder / "alpha.safetensors"
    _rewrite_header(file, old, new)
    edit_manifest(folder, lambda m: m["networks"]["alpha"].update(sha256=sha256(file)))
    with pytest.raises(WeightsError, match=r"'small-test'.*alpha\.safetensors: damaged safetensors file \(" + expected):
        load_bundle(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    with pytest.raises(WeightsError, match=expected):
        Bundle("odd", folder, manifest).load_network("alpha")
    assert any("damaged safetensors file" in p for p in verify_bundle(folder))


def _rewrite_offsets(file: Path, edit: Any) -> None:
    """Rewrite a safetensors file's header with ``edit(header)`` (tensor entries only), data unchanged."""
    data = file.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    edit({k: v for k, v in header.items() if k != "__metadata__"})
    text = json.dumps(header).encode()
    file.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n :])


@pytest.mark.parametrize(("where", "expected"), [("overlap", "inside an earlier tensor"), ("gap", "after a gap")])
def test_tensors_sharing_or_skipping_bytes_are_damaged_before_loading(
    tmp_path: Path, small_bundle: Bundle, where: str, expected: str
) -> None:
    """A header whose tensors overlap (two read the same bytes) or leave a gap passed every check,
    checksum matching, and broke ``load_network`` with safetensors' own traceback ("invalid
    offset"); ``verify_bundle`` (``lbsmatte weights show``) called such a bundle sound."""
    folder = copy_bundle(small_bundle, tmp_path / where)
    file = folder / "alpha.safetensors"

    def edit(header: dict[str, Any]) -> None:
        ordered = sorted(header.values(), key=lambda info: info["data_offsets"])
        first, second = ordered[0], ordered[1]
        size = first["data_offsets"][1] - first["data_offsets"][0]
        if where == "overlap":  # the second tensor reads the first's bytes (same dtype and shape)
            second.update(dtype=first["dtype"], shape=first["shape"], data_offsets=list(first["data_offsets"]))
        else:  # the first starts later, as long: the bytes before it are read by no tensor
            first["data_offsets"] = [size, 2 * size]
            second["data_offsets"] = [2 * size, second["data_offsets"][1]]
            second["shape"], second["dtype"] = [second["data_offsets"][1] - 2 * size], "U8"

    _rewrite_offsets(file, edit)
    edit_manifest(folder, lambda m: m["networks"]["alpha"].update(sha256=sha256(file)))
    with pytest.raises(WeightsError, match=r"alpha\.safetensors: damaged safetensors file \(tensor .* " + expected):
        load_bundle(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    with pytest.raises(WeightsError, match=expected):
        Bundle("odd", folder, manifest).load_network("alpha")
    assert any(expected in p for p in verify_bundle(folder))


def test_a_file_of_other_tensors_is_never_loaded_by_the_checks(
    tmp_path: Path, small_bundle: Bundle, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file of one huge tensor (a sparse file: kilobytes on a USB stick, gigabytes read) was
    loaded whole by ``verify_bundle`` (``lbsmatte weights show``, Troubleshoot) to look for NaN,
    after it had found the file to be of another architecture: a 2 GB one took 5.5 GB of memory."""
    import safetensors.torch

    folder = copy_bundle(small_bundle, tmp_path / "bomb")
    file = folder / "alpha.safetensors"
    count = 16 << 20  # 64 MB of float32 zeros, never written (sparse)
    head = json.dumps({"x": {"dtype": "F32", "shape": [count], "data_offsets": [0, 4 * count]}}).encode()
    with open(file, "wb") as f:
        f.write(len(head).to_bytes(8, "little") + head)
        f.truncate(8 + len(head) + 4 * count)
    edit_manifest(folder, lambda m: m["networks"]["alpha"].update(sha256=sha256(file)))
    loaded = []
    real = safetensors.torch.load_file
    monkeypatch.setattr(safetensors.torch, "load_file", lambda path, *a, **k: loaded.append(Path(path).name) or real(
        path, *a, **k))
    problems = verify_bundle(folder)
    assert any("alpha.safetensors: wrong architecture" in p and "unexpected tensors x" in p for p in problems)
    from core import cli

    assert cli.main(["weights", "show", str(folder)]) == 1
    assert "unexpected tensors x" in capsys.readouterr().out
    with pytest.raises(WeightsError, match="wrong architecture"):
        load_bundle(folder).load_network("alpha")
    assert "alpha.safetensors" not in loaded and "background.safetensors" in loaded  # the others are checked


def test_integer_weights_are_a_wrong_architecture(tmp_path: Path, small_bundle: Bundle) -> None:
    """Float tensors stored as integers loaded silently, truncated (a network of zeros)."""
    from safetensors.torch import load_file, save_file

    folder = copy_bundle(small_bundle, tmp_path / "ints")
    file = folder / "alpha.safetensors"
    save_file({k: v.to(torch.int32) for k, v in load_file(str(file)).items()}, str(file))
    edit_manifest(folder, lambda m: m["networks"]["alpha"].update(sha256=sha256(file)))
    bundle = load_bundle(folder)
    with pytest.raises(WeightsError, match=r"alpha\.safetensors .*wrong architecture.*dtype mismatch \S+ I32 vs network float32"):
        bundle.load_network("alpha")
    assert any("dtype mismatch" in p for p in verify_bundle(bundle))
    assert bundle.load_network("background") is not None
    # Float tensors in another float dtype are fine: they load as float32.
    save_file({k: v.double() if v.is_floating_point() else v for k, v in load_file(str(small_bundle.path / "alpha.safetensors")).items()}, str(file))
    edit_manifest(folder, lambda m: m["networks"]["alpha"].update(sha256=sha256(file)))
    assert load_bundle(folder).load_network("alpha").stem[0].weight.dtype == torch.float32


def test_wrong_architecture_names_bundle_file_and_keys(tmp_path: Path, small_bundle: Bundle) -> None:
    folder = copy_bundle(small_bundle, tmp_path / "wrong")
    wider = network_config("background", "small", width=8)
    edit_manifest(folder, lambda m: m["networks"]["background"].update(config=wider))
    bundle = load_bundle(folder)  # files and checksums are fine; the config does not fit them
    with pytest.raises(WeightsError) as info:
        bundle.load_network("background")
    message = str(info.value)
    assert "'small-test'" in message and "background.safetensors" in message
    assert "wrong architecture" in message and "shape mismatch" in message
    first_key = next(iter(build_network(wider).state_dict()))
    assert first_key in message
    assert bundle.load_network("foreground") is not None  # the other networks still load
    assert any("wrong architecture" in p for p in verify_bundle(bundle))
    from core import cli

    assert cli.main(["weights", "show", str(folder)]) == 1  # the check a TD runs before a render


def test_architecture_with_other_layers_lists_missing_keys(tmp_path: Path, small_bundle: Bundle) -> None:
    folder = copy_bundle(small_bundle, tmp_path / "refine")
    config = {**small_bundle.config("alpha"), "refine": True}
    edit_manifest(folder, lambda m: m["networks"]["alpha"].update(config=config))
    with pytest.raises(WeightsError, match=r"wrong architecture.*missing tensors refine_net\."):
        load_bundle(folder).load_network("alpha")


@pytest.mark.parametrize(
    "content,expected",
    [
        ("{not json", "manifest.json is not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"format": "something-else", "format_version": 1}), "not an LBSMatte bundle manifest"),
        (json.dumps({"format": "lbsmatte-bundle", "format_version": 99, "networks": {}}), "newer than this"),
    ],
)
def test_bad_manifest(tmp_path: Path, small_bundle: Bundle, content: str, expected: str) -> None:
    folder = copy_bundle(small_bundle, tmp_path / "badjson")
    (folder / "manifest.json").write_text(content)
    with pytest.raises(WeightsError, match=r"weights bundle 'badjson'") as info:
        load_bundle(folder)
    assert expected in str(info.value)
    assert any(expected in p for p in verify_bundle(folder))


def test_manifest_without_config_or_with_escaping_file_name(tmp_path: Path, small_bundle: Bundle) -> None:
    folder = copy_bundle(small_bundle, tmp_path / "noconfig")
    edit_manifest(folder, lambda m: m["networks"]["alpha"].pop("config"))
    with pytest.raises(WeightsError, match="the alpha network has no architecture config"):
        load_bundle(folder)
    folder = copy_bundle(small_bundle, tmp_path / "escape")
    edit_manifest(folder, lambda m: m["networks"]["alpha"].update(file="../alpha.safetensors"))
    with pytest.raises(WeightsError, match="is not a file name"):
        load_bundle(folder)


def test_missing_folder_and_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        load_bundle(tmp_path / "nowhere")
    # A file (the manifest itself, most likely) was reported as a folder that "does not exist".
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "manifest.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(WeightsError, match=r"manifest\.json is a file, not a bundle folder .*; pass its folder, .*b$"):
        load_bundle(tmp_path / "b" / "manifest.json")
    with pytest.raises(WeightsError, match=r"notes\.txt is a file, not a bundle folder \(a folder holding manifest\.json .*files\)$"):
        load_bundle(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match=r"'empty'.*manifest\.json is missing"):
        load_bundle(tmp_path / "empty")


# -- search path -----------------------------------------------------------------------------


def test_search_path_order_precedence_and_broken_manifests(
    tmp_path: Path, small_bundle: Bundle, isolated_search: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    show_root = tmp_path / "show"  # a folder of bundles
    copy_bundle(small_bundle, show_root / "b_main", name="main")
    copy_bundle(small_bundle, show_root / "a_extra", name="extra")
    copy_bundle(small_bundle, show_root / "broken")
    (show_root / "broken" / "manifest.json").write_text("{oops")
    (show_root / "not_a_bundle").mkdir()
    studio_main = copy_bundle(small_bundle, tmp_path / "studio_main", name="main")  # a bundle folder itself

    monkeypatch.setenv(weights.WEIGHTS_PATH_ENV, f"{show_root}{weights.os.pathsep}{studio_main}")
    with caplog.at_level(logging.WARNING, logger="core.weights"):
        found = find_bundles()
    assert [(b.name, b.path) for b in found] == [("extra", show_root / "a_extra"), ("main", show_root / "b_main")]
    assert "broken" in caplog.text and "shadowed" in caplog.text
    assert load_bundle("main").path == show_root / "b_main"
    # Each search warns: the warnings are said once a process, however often it searches.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="core.weights"):
        find_bundles()
        find_bundles()
    assert caplog.text.count("skipping weights bundle") == 0 and caplog.text.count("shadowed") == 0
    # Asked for by name, the broken bundle is named with what is wrong, not as a missing one.
    with pytest.raises(WeightsError, match=r"weights bundle 'broken' \(.*broken\) cannot be used: manifest\.json is not valid JSON"):
        load_bundle("broken")
    # So is a folder there without its manifest (the weights copied, not the manifest), not "no folder of that name".
    with pytest.raises(WeightsError, match=r"weights bundle 'not_a_bundle' \(.*not_a_bundle\) cannot be used: manifest\.json is missing"):
        load_bundle("not_a_bundle")

    # Reverse the order: the studio's bundle now wins.
    monkeypatch.setenv(weights.WEIGHTS_PATH_ENV, f"{studio_main}{weights.os.pathsep}{show_root}")
    assert load_bundle("main").path == studio_main
    assert [b.name for b in find_bundles()] == ["main", "extra"]

    # The packaged default comes first and cannot be shadowed by a path bundle called 'default'.
    copy_bundle(small_bundle, isolated_search)
    copy_bundle(small_bundle, show_root / "c_default", name="default")
    found = find_bundles()
    assert [b.name for b in found] == ["default", "main", "extra"]
    assert found[0].path == isolated_search
    assert load_bundle("default").path == isolated_search


def test_unknown_name_lists_bundles_and_search_path(
    tmp_path: Path, small_bundle: Bundle, isolated_search: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(WeightsError, match=r"bundles found: none.*LBSMATTE_WEIGHTS_PATH is not set"):
        load_bundle("show_x")
    copy_bundle(small_bundle, tmp_path / "lib" / "one", name="one")
    monkeypatch.setenv(weights.WEIGHTS_PATH_ENV, str(tmp_path / "lib"))
    with pytest.raises(WeightsError) as info:
        load_bundle("show_x")
    message = str(info.value)
    assert "'show_x'" in message and "bundles found: one" in message
    assert f"LBSMATTE_WEIGHTS_PATH={tmp_path / 'lib'}" in message and str(isolated_search) in message
    assert verify_bundle("show_x") == [message]


def test_find_bundles_reads_no_weights(
    tmp_path: Path, small_bundle: Bundle, isolated_search: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = copy_bundle(small_bundle, tmp_path / "lib" / "damaged", name="damaged")
    (folder / "alpha.safetensors").write_bytes(b"garbage")
    monkeypatch.setenv(weights.WEIGHTS_PATH_ENV, str(tmp_path / "lib"))
    assert [b.name for b in find_bundles()] == ["damaged"]  # listed cheaply...
    with pytest.raises(WeightsError, match="not a safetensors file"):
        load_bundle("damaged")  # ...refused when used


def test_default_bundle_location_and_trained_flag(
    small_bundle: Bundle, isolated_search: Path, tmp_path: Path
) -> None:
    assert weights.default_bundle_path() == isolated_search
    assert not has_trained_default()  # no packaged bundle
    copy_bundle(small_bundle, isolated_search)
    assert not has_trained_default()  # present but untrained
    edit_manifest(isolated_search, lambda m: m.update(trained=True))
    assert has_trained_default()
    assert load_bundle(isolated_search).name == "default"


def test_real_default_bundle_path_is_inside_the_package() -> None:
    path = default_bundle_path()
    assert path == Path(weights.__file__).resolve().parent / "bundles" / "default"


# -- atomic save -----------------------------------------------------------------------------


def _failing_after(count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make safetensors' save_file fail (disk full) after ``count`` files were written."""
    import safetensors.torch

    real = safetensors.torch.save_file
    calls = {"n": 0}

    def save_file(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] > count:
            raise OSError(28, "No space left on device")
        real(*args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)


def test_failure_mid_save_leaves_no_half_bundle(
    tmp_path: Path, small_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    nets = small_bundle.load_networks()
    _failing_after(2, monkeypatch)
    with pytest.raises(OutputError, match="cannot write the weights bundle .*: No space left on device"):
        save_bundle(tmp_path / "new", nets, name="new", description="")
    assert list(tmp_path.iterdir()) == []  # neither the bundle nor a temporary folder


def test_overwrite_replaces_only_a_complete_bundle(
    tmp_path: Path, small_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    nets = small_bundle.load_networks()
    target = tmp_path / "show"
    save_bundle(target, nets, name="show", description="first")
    before = (target / "manifest.json").read_bytes()

    with pytest.raises(WeightsError, match="already exists; pass --overwrite"):
        save_bundle(target, nets, name="show", description="second")
    assert (target / "manifest.json").read_bytes() == before

    with monkeypatch.context() as m:
        _failing_after(1, m)
        with pytest.raises(OutputError, match="No space left on device"):
            save_bundle(target, nets, name="show", description="second", overwrite=True)
    assert (target / "manifest.json").read_bytes() == before
    assert load_bundle(target).manifest["description"] == "first"

    save_bundle(target, nets, name="show", description="second", overwrite=True)
    assert load_bundle(target).manifest["description"] == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["show"]  # no temporary or old folders left


def test_a_bundle_replaced_keeps_its_permissions_and_group(tmp_path: Path, small_bundle: Bundle) -> None:
    # A show's group-writable bundle (0o2775 folder, 0o664 files) became 0o755/0o644 after
    # 'finetune --overwrite': the rest of the team could no longer replace it.
    import os

    nets = small_bundle.load_networks()
    target = tmp_path / "show"
    save_bundle(target, nets, name="show", description="first")
    group = 4242 if os.geteuid() == 0 else os.getegid()
    for path in [target, *target.iterdir()]:
        os.chown(path, -1, group)
        os.chmod(path, 0o2775 if path.is_dir() else 0o664)
    old = os.umask(0o022)
    try:
        save_bundle(target, nets, name="show", description="second", overwrite=True)
        save_bundle(tmp_path / "fresh", nets, name="fresh", description="new")
    finally:
        os.umask(old)
    assert load_bundle(target).manifest["description"] == "second"
    modes = {p.name: (p.stat().st_mode & 0o7777, p.stat().st_gid) for p in [target, *target.iterdir()]}
    assert modes == {"show": (0o2775, group), "manifest.json": (0o664, group), "background.safetensors": (0o664, group),
                     "foreground.safetensors": (0o664, group), "alpha.safetensors": (0o664, group)}
    fresh = tmp_path / "fresh"
    assert {p.stat().st_mode & 0o7777 for p in fresh.iterdir()} == {0o644} and fresh.stat().st_mode & 0o7777 == 0o755


def test_a_folder_made_there_while_the_bundle_was_written_is_not_replaced(tmp_path: Path, small_bundle: Bundle,
                                                                          monkeypatch) -> None:
    # Someone else's bundle appears at the destination while this one is being written (no
    # --overwrite): it is kept, and this save fails naming the folder.
    import core.weights as weights

    target = tmp_path / "show"
    real = weights._fsync_dir

    def meanwhile(folder: Path) -> None:
        real(folder)
        target.mkdir()
        (target / "theirs.txt").write_text("theirs")

    monkeypatch.setattr(weights, "_fsync_dir", meanwhile)
    with pytest.raises(WeightsError, match=f"weights bundle folder {target} already exists; pass --overwrite"):
        save_bundle(target, small_bundle.load_networks(), name="show", description="mine")
    assert [p.name for p in target.iterdir()] == ["theirs.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["show"]  # no temporary folder left


def test_a_bundle_file_that_was_a_link_gives_its_replacement_no_mode_of_the_linked_file(
        tmp_path: Path, small_bundle: Bundle) -> None:
    # The old bundle's weights were a link to a private file elsewhere: the new bundle's own file
    # takes the umask's mode, not the linked file's, and the linked file is left as it was.
    import os

    nets = small_bundle.load_networks()
    target = tmp_path / "show"
    save_bundle(target, nets, name="show", description="first")
    private = tmp_path / "store" / "alpha.safetensors"
    private.parent.mkdir()
    (target / "alpha.safetensors").rename(private)
    os.chmod(private, 0o600)
    (target / "alpha.safetensors").symlink_to(private)
    old = os.umask(0o022)
    try:
        save_bundle(target, nets, name="show", description="second", overwrite=True)
    finally:
        os.umask(old)
    replaced = target / "alpha.safetensors"
    assert not replaced.is_symlink() and replaced.stat().st_mode & 0o7777 == 0o644
    assert private.stat().st_mode & 0o7777 == 0o600


def test_overwrite_never_replaces_a_folder_that_is_not_a_bundle(tmp_path: Path, small_bundle: Bundle) -> None:
    precious = tmp_path / "plates"
    precious.mkdir()
    (precious / "plate.0001.exr").write_bytes(b"keep me")
    with pytest.raises(WeightsError, match="not a weights bundle"):
        save_bundle(precious, small_bundle.load_networks(), name="x", description="", overwrite=True)
    assert (precious / "plate.0001.exr").read_bytes() == b"keep me"


def test_overwrite_never_replaces_a_folder_whose_manifest_json_is_another_tools(
    tmp_path: Path, small_bundle: Bundle
) -> None:
    """``manifest.json`` is a common file name (a web app's, a browser extension's): --out on such a
    folder with --overwrite must not delete it and everything in it."""
    project = tmp_path / "webapp"
    project.mkdir()
    (project / "manifest.json").write_text(json.dumps({"name": "My App", "start_url": "/"}))
    (project / "index.html").write_text("keep me")
    with pytest.raises(WeightsError, match=r"refusing to replace .*webapp: .*not an LBSMatte bundle manifest"):
        save_bundle(project, small_bundle.load_networks(), name="x", description="", overwrite=True)
    assert (project / "index.html").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["webapp"]


def test_overwrite_refuses_a_bundle_folder_holding_the_users_own_files(tmp_path: Path, small_bundle: Bundle) -> None:
    """A bundle folder is replaced whole: an evaluation's --json, an export's .pt or a notes file
    put in it were deleted with the old bundle by --overwrite. They are named and kept; the files
    a file browser leaves (.DS_Store, ._NAME, Thumbs.db) are no one's work and do not stop it."""
    nets = small_bundle.load_networks()
    target = tmp_path / "show"
    save_bundle(target, nets, name="show", description="first")
    (target / "scores.json").write_text("mine")
    (target / "sheets").mkdir()
    (target / "sheets" / "GT04.png").write_bytes(b"mine")
    before = (target / "manifest.json").read_bytes()
    with pytest.raises(WeightsError, match=r"refusing to replace .*show: besides the weights bundle it holds "
                                           r"scores\.json, sheets/, which --overwrite would delete"):
        save_bundle(target, nets, name="show", description="second", overwrite=True)
    assert (target / "scores.json").read_text() == "mine"
    assert (target / "sheets" / "GT04.png").read_bytes() == b"mine"
    assert (target / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["show"]

    (target / "scores.json").unlink()
    shutil.rmtree(target / "sheets")
    for junk in (".DS_Store", "._alpha.safetensors", "Thumbs.db"):
        (target / junk).write_bytes(b"")
    save_bundle(target, nets, name="show", description="second", overwrite=True)
    assert load_bundle(target).manifest["description"] == "second"


def test_half_storage_halves_the_files_and_loads_as_float32(tmp_path: Path, make_small_networks: Any) -> None:
    nets = make_small_networks(seed=5)
    full = save_bundle(tmp_path / "full", nets, name="full", description="f32", trained=False)
    half = save_bundle(tmp_path / "half", nets, name="half", description="f16", trained=False, storage="float16")
    assert half.manifest["storage"] == "float16" and full.manifest["storage"] == "float32"
    header = weights._read_header(half.path / "foreground.safetensors")
    assert {info["dtype"] for info in header.values()} == {"F16"}
    size = {b.name: sum((b.path / f"{r}.safetensors").stat().st_size for r in ("background", "foreground", "alpha"))
            for b in (full, half)}
    assert size["half"] < 0.6 * size["full"]  # half the data; the JSON headers stay
    net = load_bundle(half.path).load_network("foreground")
    assert all(p.dtype == torch.float32 for p in net.parameters())
    for key, value in net.state_dict().items():
        ref = nets["foreground"].state_dict()[key]
        assert torch.equal(value, ref.to(torch.float16).to(value.dtype)), key


def test_half_storage_refuses_values_out_of_range(tmp_path: Path, make_small_networks: Any) -> None:
    nets = make_small_networks(seed=5)
    with torch.no_grad():
        next(nets["alpha"].parameters()).view(-1)[0] = 1e6
    with pytest.raises(WeightsError, match="beyond half precision"):
        save_bundle(tmp_path / "b", nets, name="b", description="x", trained=False, storage="float16")
    assert not (tmp_path / "b").exists()
    with pytest.raises(WeightsError, match="float32 or float16"):
        save_bundle(tmp_path / "c", nets, name="c", description="x", trained=False, storage="bfloat16")


def test_summary_shows_the_refinement_a_bundle_runs_with(tmp_path: Path, small_bundle: Bundle) -> None:
    # `lbsmatte weights show` and the Nuke panel: which settings the pipeline takes from the
    # manifest, and what chose them; a bundle that records none says the defaults apply.
    assert "  refinement: none recorded (the pipeline's own defaults)" in small_bundle.summary().splitlines()
    copy = tmp_path / "tuned"
    shutil.copytree(small_bundle.path, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["refinement"] = {"rounds": 1, "knn": 0.01, "knn_band": 32, "black_point": 0.06,
                              "chosen_on": {"objects": ["GT01", "GT03"], "trimaps": ["Trimap1", "Trimap2"],
                                            "criterion": "lowest mean SAD + mean gradient error", "sad": 4.3623,
                                            "grad": 4.0677}}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    lines = load_bundle(str(copy)).summary().splitlines()
    at = lines.index("  refinement:")
    assert lines[at + 1] == "    settings: rounds=1, knn=0.01, knn_band=32, black_point=0.06"
    assert lines[at + 2] == ("    chosen on: 2 objects, Trimap1/Trimap2, lowest mean SAD + mean gradient error "
                             "(in-sample SAD 4.362, Grad 4.068)")
    assert lines[at + 3] == "  networks:"


def test_a_hand_edited_manifests_odd_values_are_reported_not_a_traceback(tmp_path: Path, small_bundle: Bundle) -> None:
    """``weights show`` ended in a TypeError on a manifest whose refinement was chosen on ``5``
    objects or ``"Trimap1"`` (not lists), and loading (``matte``, ``weights show``) on a network
    config whose architecture was a list or a table (unhashable)."""
    folder = copy_bundle(small_bundle, tmp_path / "odd")
    edit_manifest(folder, lambda m: m.update(refinement={"rounds": 1, "chosen_on": {"objects": 5, "trimaps": "Trimap1"}}))
    assert "chosen on: 1 objects, Trimap1" in load_bundle(folder).summary()
    edit_manifest(folder, lambda m: m["networks"]["alpha"]["config"].update(architecture=[]))
    assert any("unknown network architecture []" in p for p in verify_bundle(folder))
    with pytest.raises(WeightsError, match=r"'small-test'.*alpha network .*unknown network architecture \[\]"):
        load_bundle(folder).load_network("alpha")


def test_a_fine_tune_of_a_fine_tune_names_the_bundle_whose_settings_it_inherits(
    tmp_path: Path, small_bundle: Bundle, make_small_networks: Any,
) -> None:
    # abc_v2 fine-tuned from abc_v1, itself fine-tuned from default: the refinement settings were
    # chosen for default's networks; `weights show abc_v2` said "inherited from: abc_v1 (chosen for
    # its networks)", whose networks nothing was ever chosen for.
    chosen = {"rounds": 1, "knn": 0.01, "knn_band": 32}
    origin = copy_bundle(small_bundle, tmp_path / "origin", name="origin")
    edit_manifest(origin, lambda m: m.update(refinement=chosen | {"chosen_on": {"objects": ["GT01"]}}))
    origin_bundle = load_bundle(origin)
    v1 = weights.save_bundle(tmp_path / "abc_v1", make_small_networks(), name="abc_v1", description="v1",
                             parent=origin_bundle, refinement=weights.inherited_refinement(origin_bundle))
    v2 = weights.save_bundle(tmp_path / "abc_v2", make_small_networks(), name="abc_v2", description="v2",
                             parent=v1, refinement=weights.inherited_refinement(v1))
    v3 = weights.save_bundle(tmp_path / "abc_v3", make_small_networks(), name="abc_v3", description="v3",
                             parent=v2, refinement=weights.inherited_refinement(v2))
    assert v1.manifest["refinement"] == chosen | {
        "inherited_from": {"bundle": "origin", "sha256": origin_bundle.manifest_sha256()}}
    assert v3.manifest["refinement"] == chosen | {
        "inherited_from": {"bundle": "origin", "sha256": origin_bundle.manifest_sha256(), "through": ["abc_v1", "abc_v2"]}}
    assert ("    inherited from: origin, through abc_v1, abc_v2 (chosen for its networks, not re-chosen for these)"
            in v3.summary().splitlines())
    assert "  parent: abc_v2 (manifest sha256 " in v3.summary()


def test_an_unlistable_search_entry_is_skipped_not_fatal(
    tmp_path: Path, small_bundle: Bundle, isolated_search: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another show's folder the user may not read, on the studio's path: warned about and skipped;
    every other bundle (and the default) still loads, and a half-copied bundle is named."""
    locked = tmp_path / "locked"
    locked.mkdir()
    copy_bundle(small_bundle, tmp_path / "lib" / "one", name="one")
    half = tmp_path / "lib" / "half"
    half.mkdir()
    (half / "alpha.safetensors").write_bytes(b"")
    real_iterdir = Path.iterdir

    def iterdir(self: Path) -> Any:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    monkeypatch.setenv(weights.WEIGHTS_PATH_ENV, f"{locked}{weights.os.pathsep}{tmp_path / 'lib'}")
    with caplog.at_level(logging.WARNING, logger="core.weights"):
        assert [b.name for b in find_bundles()] == ["one"]
    assert f"{locked} cannot be listed" in caplog.text
    assert f"skipping weights bundle {half}: manifest.json is missing" in caplog.text
    assert load_bundle("one").name == "one"


def test_a_folder_the_user_may_not_enter_is_skipped_not_fatal(
    tmp_path: Path, small_bundle: Bundle, isolated_search: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another department's bundle folder (drwx------) in the show's weights folder, or a path entry
    inside another show's: pathlib raises PermissionError for what lies inside them, which made
    every command naming a bundle (default too) fail with 'ERROR: Permission denied: .../manifest.json'.
    Now each is warned about and skipped, as an entry that cannot be listed is."""
    lib = tmp_path / "lib"
    copy_bundle(small_bundle, lib / "one", name="one")
    private = copy_bundle(small_bundle, lib / "private_wip", name="private_wip")
    other_show = tmp_path / "other_show"
    copy_bundle(small_bundle, other_show / "weights", name="theirs")
    real_stat = Path.stat

    def stat(self: Path, *args: Any, **kwargs: Any) -> Any:
        if private in self.parents or other_show in self.parents:  # what a folder without x permission holds
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    monkeypatch.setenv(weights.WEIGHTS_PATH_ENV, f"{other_show / 'weights'}{weights.os.pathsep}{lib}")
    with caplog.at_level(logging.WARNING, logger="core.weights"):
        assert [b.name for b in find_bundles()] == ["one"]
    assert f"{weights.WEIGHTS_PATH_ENV} entry {other_show / 'weights'} cannot be read" in caplog.text
    assert f"skipping weights bundle {private}: it cannot be read" in caplog.text
    assert load_bundle("one").name == "one"
    with pytest.raises(WeightsError, match=r"'private_wip' \(.*private_wip\) cannot be used: .* cannot be read: "
                       r".*Permission denied"):
        load_bundle("private_wip")
    with pytest.raises(WeightsError, match=r"no weights bundle named 'theirs'"):
        load_bundle("theirs")


def test_weights_list_keeps_one_line_per_bundle(
    tmp_path: Path, small_bundle: Bundle, isolated_search: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from core import cli

    folder = copy_bundle(small_bundle, tmp_path / "lib" / "huge", name="huge")
    edit_manifest(folder, lambda m: m.update(description="line one\nline two\t" + "x" * 100_000))
    monkeypatch.setenv(weights.WEIGHTS_PATH_ENV, str(tmp_path / "lib"))
    assert cli.main(["weights", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].split("\t")[0] == "huge" and len(lines[0].split("\t")) == 4
    assert lines[0].split("\t")[3].startswith("line one line two xxx") and len(lines[0]) < 1000


def test_weights_list_is_the_documented_table(
    tmp_path: Path, small_bundle: Bundle, isolated_search: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # README, Weights bundles: what a TD's script reads -- a line per bundle in the order names are
    # picked, NAME, trained|UNTRAINED, folder, description tab-separated, skipped and shadowed
    # bundles said before them on WARNING: lines.
    from core import cli

    copy_bundle(small_bundle, tmp_path / "a" / "z_last", name="abc_v1")
    copy_bundle(small_bundle, tmp_path / "a" / "b_first", name="abc_v2", trained=True)
    copy_bundle(small_bundle, tmp_path / "a" / "c_newer", name="abc_v3", format_version=2)
    copy_bundle(small_bundle, tmp_path / "b" / "abc_v1", name="abc_v1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(weights.WEIGHTS_PATH_ENV, weights.os.pathsep.join(["a", str(tmp_path / "b")]))
    assert cli.main(["weights", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    warnings = [line for line in lines if line.startswith("WARNING: ")]
    table = [line.split("\t") for line in lines[len(warnings):]]
    assert len(warnings) == 2 and "c_newer" in warnings[0] and "shadowed" in warnings[1]
    assert [row[:3] for row in table] == [["abc_v2", "trained", str(Path("a", "b_first"))],
                                          ["abc_v1", "UNTRAINED", str(Path("a", "z_last"))]]
    assert all(len(row) == 4 and row[3] for row in table)


def test_weights_list_and_show_json_hold_stdout_alone(
    tmp_path: Path, small_bundle: Bundle, isolated_search: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # README, Weights bundles: a pipeline script reads `weights list --json` with json.loads(stdout);
    # there was no --json, and the WARNING line of a skipped bundle came before show's JSON on stdout.
    from core import cli

    copy_bundle(small_bundle, tmp_path / "a" / "b_first", name="abc_v2", trained=True)
    copy_bundle(small_bundle, tmp_path / "a" / "z_last", name="abc_v1")
    edit_manifest(tmp_path / "a" / "z_last", lambda m: m.update(description="line one\n" + "x" * 400))
    broken = tmp_path / "a" / "m_broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{cut off")
    monkeypatch.setenv(weights.WEIGHTS_PATH_ENV, str(tmp_path / "a"))
    assert cli.main(["weights", "list", "--json"]) == 0
    said = capsys.readouterr()
    listing = json.loads(said.out)
    assert [sorted(row) for row in listing] == [["description", "name", "path", "trained"]] * 2
    assert [(row["name"], row["trained"], row["path"]) for row in listing] == [
        ("abc_v2", True, str(tmp_path / "a" / "b_first")), ("abc_v1", False, str(tmp_path / "a" / "z_last"))]
    assert listing[1]["description"] == "line one\n" + "x" * 400  # whole, not cut as in the table
    assert said.err.startswith(f"WARNING: skipping weights bundle {broken}") and len(said.err.splitlines()) == 1
    monkeypatch.setattr(weights, "_WARNED", set())  # said once a process: say it again for show
    assert cli.main(["weights", "show", "abc_v2", "--json"]) == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["name"] == "abc_v2" and said.err.startswith("WARNING: skipping weights bundle")
    assert cli.main(["weights", "show", "nothing", "--json"]) == 1
    said = capsys.readouterr()
    assert said.out == "" and "ERROR: no weights bundle named 'nothing'" in said.err
    monkeypatch.setenv(weights.WEIGHTS_PATH_ENV, str(tmp_path / "empty"))
    assert cli.main(["weights", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    # README, JSON for scripts: a folder name's byte that is not UTF-8 is \udcXX, which os.fsencode
    # turns back into the folder's own bytes, in ASCII JSON
    odd = os.path.join(os.fsencode(tmp_path), b"w\xff")
    try:
        copy_bundle(small_bundle, Path(os.fsdecode(odd)) / "show", name="show")
    except (OSError, UnicodeError):  # a file system that stores names as Unicode only
        return
    monkeypatch.setenv(weights.WEIGHTS_PATH_ENV, os.fsdecode(odd))
    assert cli.main(["weights", "list", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.isascii() and "\\udcff" in out
    assert os.fsencode(json.loads(out)[0]["path"]) == os.path.join(odd, b"show")


def test_a_renamed_bundle_folder_is_named_with_the_bundle_it_holds(
    tmp_path: Path, small_bundle: Bundle, isolated_search: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A show renames the folder abc_v1 to abc_v1_approved: its manifest still names abc_v1, and
    # --weights abc_v1_approved said "no weights bundle named ... (and no folder of that name)".
    lib = tmp_path / "lib"
    folder = copy_bundle(small_bundle, lib / "abc_v1_approved", name="abc_v1")
    copy_bundle(small_bundle, lib / "odd", name="odd:name")
    monkeypatch.setenv(weights.WEIGHTS_PATH_ENV, str(lib))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsError) as info:
        load_bundle("abc_v1_approved")
    assert str(info.value) == (
        f"no weights bundle named 'abc_v1_approved': the folder {folder} holds the bundle 'abc_v1' (a bundle is "
        "picked by the name its manifest.json gives, not by its folder's): select it as 'abc_v1', or by its folder")
    assert weights.verify_bundle("abc_v1_approved") == [str(info.value)]
    with pytest.raises(WeightsError, match=r"^weights bundle 'odd' \(.*odd\) cannot be used: its name 'odd:name' holds"):
        load_bundle("odd")
    with pytest.raises(WeightsError, match=r"^no weights bundle named 'abc_v2' \(and no folder of that name\)"):
        load_bundle("abc_v2")
    assert load_bundle("abc_v1").path == folder


def test_a_manifest_one_format_version_ahead_is_refused(tmp_path: Path, small_bundle: Bundle) -> None:
    folder = copy_bundle(small_bundle, tmp_path / "ahead")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = weights.FORMAT_VERSION + 1
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="newer than this"):
        load_bundle(folder)


def test_verify_bundle_reports_untrained_networks_only_when_asked(small_bundle: Bundle) -> None:
    assert small_bundle.manifest.get("trained") is not True
    assert not any("untrained" in p for p in verify_bundle(small_bundle))
    assert any("untrained" in p for p in verify_bundle(small_bundle, require_trained=True))


# -- hostile files (a vendor's bundle is data, never trusted) -------------------------------


def test_deeply_nested_manifest_is_refused_not_a_recursion_error(
    tmp_path: Path, small_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[[[[...`` (or a config nested a few hundred deep, which json parses but deepcopy does not
    survive) is malformed JSON with the bundle named, and the search skips it instead of dying."""
    deep = copy_bundle(small_bundle, tmp_path / "show" / "deep")
    (deep / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(WeightsError, match=r"weights bundle 'deep'.*manifest\.json is not valid JSON.*nested"):
        load_bundle(deep)
    assert any("nested" in p for p in verify_bundle(deep))
    nested = copy_bundle(small_bundle, tmp_path / "show" / "nested")
    config: Any = 1
    for _ in range(500):
        config = {"x": config}
    edit_manifest(nested, lambda m: m["networks"]["alpha"]["config"].update(extra=config))
    with pytest.raises(WeightsError, match=r"weights bundle 'nested'.*nested more than"):
        load_bundle(nested)
    monkeypatch.setenv(weights.WEIGHTS_PATH_ENV, str(tmp_path / "show"))
    assert [b.name for b in find_bundles() if b.name != "default"] == []


def test_oversized_manifest_is_refused_before_it_is_read(
    tmp_path: Path, small_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = copy_bundle(small_bundle, tmp_path / "huge")
    size = (folder / "manifest.json").stat().st_size
    monkeypatch.setattr(weights, "_MAX_MANIFEST", size - 1)
    read = []
    real_read_text = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: read.append(self) or real_read_text(self, *a, **k))
    with pytest.raises(WeightsError, match=rf"weights bundle 'huge'.*manifest\.json is {size} bytes, more than"):
        load_bundle(folder)
    assert read == []


def test_deeply_nested_safetensors_header_is_not_a_safetensors_file(tmp_path: Path, small_bundle: Bundle) -> None:
    folder = copy_bundle(small_bundle, tmp_path / "deephead")
    file = folder / "alpha.safetensors"
    head = ("[" * 100_000 + "]" * 100_000).encode()
    file.write_bytes(len(head).to_bytes(8, "little") + head)
    edit_manifest(folder, lambda m: m["networks"]["alpha"].update(sha256=sha256(file)))
    with pytest.raises(WeightsError, match=r"alpha\.safetensors: not a safetensors file \(its header is not JSON\)"):
        load_bundle(folder)


# -- names, leftovers of a killed save, the packaged bundles ---------------------------------


@pytest.mark.parametrize(("name", "problem"), [
    ("../escape", "begins with '.'"),
    ("..", "begins with '.'"),
    ("show/x", r"holds '/'"),
    ("show\\x", r"holds '\\\\'"),
    ("C:x", "holds ':'"),
    (" show", "white space"),
    ("", "is empty"),
    ("None", "diagnostic without networks"),
    ("a\nb", r"holds '\\n'"),
    ("show ", "white space"),  # the knob strips it at either end
    (".hidden", "begins with '.'"),  # the search skips hidden folders
    ("a\x1fb", r"holds '\\x1f'"),
    ("a\x7fb", r"holds '\\x7f'"),
    *((f"a{c}b", "holds " + __import__("re").escape(repr(c))) for c in '*?"<>|'),  # Windows refuses them
])
def test_a_name_that_could_not_be_selected_back_is_refused_before_anything_is_written(
    tmp_path: Path, small_bundle: Bundle, name: str, problem: str
) -> None:
    with pytest.raises(WeightsError, match=rf"^{__import__('re').escape(repr(name))} cannot be a weights bundle name: it .*{problem}"):
        save_bundle(tmp_path / "out" / "b", small_bundle.load_networks(), name=name, description="")
    assert not (tmp_path / "out").exists()
    assert weights.name_problem("show_x-v2.1") == ""


def test_a_bundle_whose_manifest_name_cannot_be_selected_is_skipped_with_its_name(
    tmp_path: Path, small_bundle: Bundle, isolated_search: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    show = tmp_path / "show"
    copy_bundle(small_bundle, show / "a", name="a/b")  # listed, '--weights a/b' would be read as a folder
    copy_bundle(small_bundle, show / "ok", name="ok")
    monkeypatch.setenv(weights.WEIGHTS_PATH_ENV, str(show))
    with caplog.at_level(logging.WARNING, logger="core.weights"):
        assert [b.name for b in find_bundles()] == ["ok"]
    assert f"skipping weights bundle {show / 'a'}: its name 'a/b' holds '/'" in caplog.text


def test_a_killed_saves_temporary_folder_neither_shadows_nor_blocks_and_is_cleaned_when_stale(
    tmp_path: Path, small_bundle: Bundle, isolated_search: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    show = tmp_path / "show"
    real = copy_bundle(small_bundle, show / "main", name="main")
    # A save of a new 'main' killed after its manifest was written, before the rename: its
    # temporary folder holds a complete bundle named 'main', and sorts before the real one.
    stale = copy_bundle(small_bundle, show / ".main.tmp-0123abcd", name="main")
    fresh = copy_bundle(small_bundle, show / ".main.tmp-4567cdef", name="main")  # a save in progress
    put_aside = copy_bundle(small_bundle, show / ".main.old-89abcdef", name="main")
    other = copy_bundle(small_bundle, show / ".other.tmp-0123abcd", name="other")  # another bundle's
    monkeypatch.setenv(weights.WEIGHTS_PATH_ENV, str(show))
    found = find_bundles()
    assert [(b.name, b.path) for b in found] == [("main", real)]
    assert load_bundle("main").path == real

    old = weights.time.time() - 2 * weights._LEFTOVER_AGE
    for folder in (stale, put_aside, other):
        for p in [*folder.iterdir(), folder]:
            os.utime(p, (old, old))
    save_bundle(real, small_bundle.load_networks(), name="main", description="again", overwrite=True)
    assert sorted(p.name for p in show.iterdir()) == [".main.tmp-4567cdef", ".other.tmp-0123abcd", "main"]
    assert load_bundle("main").manifest["description"] == "again"
    assert fresh.is_dir() and other.is_dir()


def test_only_a_stale_leftover_of_plain_files_is_removed_never_through_a_link(
    tmp_path: Path, small_bundle: Bundle,
) -> None:
    import os

    show = tmp_path / "show"
    real = copy_bundle(small_bundle, show / "main", name="main")
    mine = tmp_path / "mine"  # a folder of the user's, that a link named like a leftover points to
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    (show / ".main.tmp-aaaaaaaa").symlink_to(mine, target_is_directory=True)
    linked = show / ".main.tmp-bbbbbbbb"  # holds a link: not what a save writes
    linked.mkdir()
    (linked / "keep.txt").symlink_to(mine / "keep.txt")
    busy = show / ".main.tmp-cccccccc"  # its folder old, a file in it changed a moment ago
    busy.mkdir()
    (busy / "alpha.safetensors").write_bytes(b"x")
    (busy / "new.safetensors").write_bytes(b"y")
    longer = show / ".main.tmp-0123abcd0"  # not the 8 hex digits of a save's name
    longer.mkdir()
    (longer / "x.safetensors").write_bytes(b"z")
    old = weights.time.time() - 2 * weights._LEFTOVER_AGE
    for p in [mine, mine / "keep.txt", linked, busy, busy / "alpha.safetensors", longer, longer / "x.safetensors"]:
        os.utime(p, (old, old))
    save_bundle(real, small_bundle.load_networks(), name="main", description="again", overwrite=True)
    assert (mine / "keep.txt").read_text() == "mine"
    assert (show / ".main.tmp-aaaaaaaa").is_symlink()
    assert (linked / "keep.txt").is_symlink()
    assert sorted(p.name for p in busy.iterdir()) == ["alpha.safetensors", "new.safetensors"]
    assert (longer / "x.safetensors").is_file()


def test_an_old_bundle_put_aside_is_kept_while_it_is_the_only_copy(tmp_path: Path, small_bundle: Bundle) -> None:
    import os

    aside = copy_bundle(small_bundle, tmp_path / ".main.old-89abcdef", name="main")  # killed between the renames
    old = weights.time.time() - 2 * weights._LEFTOVER_AGE
    for p in [*aside.iterdir(), aside]:
        os.utime(p, (old, old))
    save_bundle(tmp_path / "main", small_bundle.load_networks(), name="main", description="")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".main.old-89abcdef", "main"]


def test_the_packaged_bundles_are_read_only_even_with_overwrite(
    tmp_path: Path, small_bundle: Bundle, isolated_search: Path,
) -> None:
    copy_bundle(small_bundle, isolated_search)
    before = (isolated_search / "manifest.json").read_bytes()
    nets = small_bundle.load_networks()
    for target in (isolated_search, isolated_search.parent, isolated_search.parent / "extra"):
        with pytest.raises(WeightsError, match=rf"refusing to write {__import__('re').escape(str(target))}: it is "
                                               r"inside LBSMatte's packaged bundles .* no command changes"):
            save_bundle(target, nets, name="default", description="mine", overwrite=True)
    assert (isolated_search / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in isolated_search.parent.iterdir()) == ["default"]
    # The release step alone may replace it.
    save_bundle(isolated_search, nets, name="default", description="release", overwrite=True, replace_packaged=True)
    assert load_bundle("default").manifest["description"] == "release"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda m: m.update(format_version=0), "invalid format_version 0"),
        (lambda m: m.update(format_version="1"), "invalid format_version '1'"),
        (lambda m: m.update(networks=[]), "has no 'networks' table"),
        (lambda m: m.update(name=""), "has no 'name'"),
        (lambda m: m.pop("colour"), "has no 'colour'"),
        (lambda m: m["networks"]["foreground"].pop("sha256"), "the foreground network has no sha256"),
        (lambda m: m["networks"]["background"]["config"].pop("architecture"),
         "the background network has no architecture config"),
    ],
)
def test_each_manifest_field_is_checked(tmp_path: Path, small_bundle: Bundle, edit: Any, expected: str) -> None:
    folder = copy_bundle(small_bundle, tmp_path / "edited")
    edit_manifest(folder, edit)
    assert any(expected in problem for problem in verify_bundle(folder))
    with pytest.raises(WeightsError, match=expected):
        load_bundle(folder)


def _safetensors_file(path: Path, header: dict[str, Any], data: bytes) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    return path


@pytest.mark.parametrize(
    ("header", "data", "expected"),
    [
        ({"w": {"dtype": "F32", "shape": [-1, -4], "data_offsets": [0, 16]}}, bytes(16), "malformed header entry 'w'"),
        ({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]}, "v": {"dtype": "F32", "shape": [2],
                                                                          "data_offsets": [0, 8]}},
         bytes(8), None),
        ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}, bytes(8), "malformed header entry 'w'"),
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, bytes(12),
         "header describes 8 bytes of data, file holds 12"),
    ],
)
def test_safetensors_headers_are_checked_entry_by_entry(tmp_path: Path, header: dict[str, Any], data: bytes,
                                                        expected: str | None) -> None:
    file = _safetensors_file(tmp_path / "net.safetensors", header, data)
    if expected is None:
        assert set(weights._read_header(file)) == set(header)
        return
    with pytest.raises(ValueError, match=expected):
        weights._read_header(file)


def test_a_header_length_past_the_files_end_is_not_safetensors(tmp_path: Path) -> None:
    file = tmp_path / "net.safetensors"
    file.write_bytes((100).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="header length 100 impossible for a 10-byte file"):
        weights._read_header(file)
