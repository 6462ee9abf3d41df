"""Shared fixtures and marker handling for the test suite.

``torch`` and ``core.nets`` are imported only inside the fixtures that need them, so tests that
do not use networks still collect (and run) where torch is missing.

Markers (declared in ``setup.cfg``):

``gpu``
    skipped unless ``torch.cuda.is_available()``.
``nuke``
    skipped unless ``LBSMATTE_NUKE_EXE`` names a Nuke executable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

#: Overrides that make each network tiny (fast on a shared 2-core CPU); untrained, for plumbing tests.
SMALL_OVERRIDES: dict[str, dict[str, Any]] = {
    "background": {"width": 4},
    "foreground": {"width": 4},
    "alpha": {"widths": [4, 4, 4, 4], "aspp_width": 8, "decoder_width": 8},
}


def build_small_networks(seed: int = 0, **extra: Any) -> dict[str, Any]:
    """Three seeded, untrained ``small`` networks with :data:`SMALL_OVERRIDES` (plus ``extra`` per role)."""
    import torch

    from core.nets import build_network, network_config

    torch.manual_seed(seed)
    return {
        role: build_network(network_config(role, "small", **{**overrides, **extra.get(role, {})}))
        for role, overrides in SMALL_OVERRIDES.items()
    }


def write_exr_parts(path: Any, parts: list[tuple[str, tuple[str, ...], np.ndarray, str]]) -> None:
    """A multi-part EXR at ``path``, as renderers write their passes: ``parts`` in order, each
    ``(part name, channel names, H×W×C pixels, "half" or "float")``."""
    import OpenImageIO as oiio

    specs = []
    for name, channels, pixels, data_type in parts:
        height, width, count = pixels.shape
        spec = oiio.ImageSpec(width, height, count, data_type)
        spec.channelnames = tuple(channels)
        spec.attribute("name", name)
        specs.append(spec)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), specs)
    for index, (spec, part) in enumerate(zip(specs, parts, strict=True)):
        assert index == 0 or out.open(str(path), spec, "AppendSubimage")
        assert out.write_image(np.ascontiguousarray(part[2], dtype=np.float32))
    out.close()


#: OpenColorIO 2.5's built-in ACES 2.0 studio config (its views, named transforms and interop IDs).
ACES2_OCIO_CONFIG = "ocio://studio-config-v4.0.0_aces-v2.0_ocio-v2.5"


@pytest.fixture
def aces2_ocio_config() -> str:
    """The name of :data:`ACES2_OCIO_CONFIG`; the test is skipped where the installed OpenColorIO
    is older than 2.5 and has no such config (setup.cfg allows 2.3)."""
    import PyOpenColorIO as ocio

    try:
        ocio.Config.CreateFromFile(ACES2_OCIO_CONFIG)
    except Exception:  # OCIO raises its own Exception type
        pytest.skip(f"OpenColorIO {ocio.__version__} has no built-in {ACES2_OCIO_CONFIG} (2.5 and later)")
    return ACES2_OCIO_CONFIG


@pytest.fixture
def exr_parts() -> Any:
    """:func:`write_exr_parts` as a fixture."""
    return write_exr_parts


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A :class:`core.weights.Bundle` of three tiny untrained networks (``trained: false``).

    Session-scoped: treat it as read-only (copy the folder to damage it).
    """
    from core.weights import save_bundle

    folder = tmp_path_factory.mktemp("bundles") / "small"
    return save_bundle(
        folder,
        build_small_networks(seed=0),
        name="small-test",
        description="tiny untrained networks for tests (torch.manual_seed(0))",
        training={"note": "untrained"},
        trained=False,
    )


@pytest.fixture
def make_small_networks() -> Any:
    """:func:`build_small_networks` as a fixture: ``make_small_networks(seed=0, alpha={...})``."""
    return build_small_networks


@pytest.fixture
def stopped_by_sigterm(tmp_path: Path) -> Any:
    """``run(parent_code)``: run ``parent_code`` (a script; ``CHILD`` in it is the path of a stand-in
    training that prints "ready", then exits 3 on SIGTERM, as ``lbsmatte train`` does) in a process
    of its own, SIGTERM it once the child is ready, and return its stdout. For the tools that run
    trainings as children: the signal must reach them, not leave them orphaned."""
    import subprocess
    import sys
    import textwrap

    child = tmp_path / "stand_in_training.py"
    child.write_text(textwrap.dedent("""
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))
        print("ready", flush=True)
        time.sleep(60)
        sys.exit(0)
    """))

    def run(parent_code: str) -> str:
        parent = tmp_path / "parent.py"
        parent.write_text(f"CHILD = {str(child)!r}\n" + textwrap.dedent(parent_code))
        process = subprocess.Popen([sys.executable, str(parent)], stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        process.terminate()
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0, out
        return out

    return run


@pytest.fixture
def killed_once_started() -> Any:
    """``kill(script, started, *args, env=None, what="")``: run ``script`` (a Python file) with
    ``args`` in a process of its own (the checkout on its ``PYTHONPATH``, one thread, more of
    ``env``), wait for it to create the file ``started`` (it begins writing there, then hangs), and
    SIGKILL it: a farm's kill after its grace period, landing in the middle of a write. Fails,
    naming ``what``, if the file never appears."""
    import signal
    import subprocess
    import sys
    import time

    repo = str(Path(__file__).resolve().parents[1])

    def kill(script: Path, started: Path, *args: str, env: dict[str, str] | None = None, what: str = "") -> None:
        environ = {**os.environ, "PYTHONPATH": repo, "OMP_NUM_THREADS": "1", **(env or {})}
        child = subprocess.Popen([sys.executable, str(script), *args], env=environ)
        try:
            deadline = time.monotonic() + 120
            while not started.exists() and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert started.exists(), f"the {what or 'child'} never began writing (exit {child.poll()})"
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait()

    return kill


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh ``numpy.random.default_rng(0)`` for each test."""
    return np.random.default_rng(0)


#: ``core.training.data.CACHE_ENV``, spelled here so that this file imports no torch.
COLOUR_CACHE_ENV = "LBSMATTE_COLOUR_CACHE"
#: ``core.pipeline.THREAD_ENVS``: what gives torch its CPU thread count as it starts.
THREAD_ENVS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_colour_cache: dict[str, Any] = {}
#: The values :func:`pytest_configure` replaced, put back as the session ends (None: unset).
_environ_before: dict[str, str | None] = {}


def pytest_configure(config: pytest.Config) -> None:
    """The training data's estimated colours are cached in a folder of this session's, not in the
    checkout's ``.cache/fg``: a test run writes nothing into the repository, and the colours a test
    checks are estimated by the code under test, not read back from an earlier run's cache. Set
    before any test module imports ``core.training.data``; the processes tests start inherit it.

    torch runs one CPU thread, here and in the processes tests start, unless the shell names a
    count (:data:`THREAD_ENVS`): the tests' frames are a few thousand pixels, where a second
    OpenMP thread buys nothing, and on a 2-core machine that other jobs share each tiny
    convolution waited at the thread pool's barrier for a thread the kernel had parked (the small
    networks' forward pass on 48x64 px took 1-4 s on two threads, 0.05-0.08 s on one). Tests of
    thread counts set their own (``Matter(threads=...)``, ``torch.set_num_threads``, their
    environment). Set before any test module imports torch, which reads it once, as it starts."""
    import tempfile

    _environ_before[COLOUR_CACHE_ENV] = os.environ.get(COLOUR_CACHE_ENV)
    _colour_cache["folder"] = tempfile.mkdtemp(prefix="lbsmatte-test-colours-")
    os.environ[COLOUR_CACHE_ENV] = _colour_cache["folder"]
    if not any(os.environ.get(name) for name in THREAD_ENVS):
        _environ_before[THREAD_ENVS[0]] = os.environ.get(THREAD_ENVS[0])
        os.environ[THREAD_ENVS[0]] = "1"


@pytest.fixture(autouse=True)
def _torch_threads_as_the_environment_names() -> Iterator[None]:
    """Each test starts on the thread count its environment names (one, from pytest_configure):
    torch's count is the whole process's, and a test (or code under test) that set another and
    never gave it back left every later test on it, whose convolutions differ in their last bits
    from a fresh process's. Put back after each test, once monkeypatch has put the environment back."""
    yield
    torch = sys.modules.get("torch")
    value = os.environ.get(THREAD_ENVS[0], "")
    if torch is not None and value.isdigit() and int(value) >= 1 and torch.get_num_threads() != int(value):
        torch.set_num_threads(int(value))


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    if "folder" not in _colour_cache:
        return
    shutil.rmtree(_colour_cache.pop("folder"), ignore_errors=True)
    for name, before in _environ_before.items():
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
    _environ_before.clear()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu`` tests without CUDA and ``nuke`` tests without ``LBSMATTE_NUKE_EXE``, saying why."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if gpu_items:
        try:
            import torch

            cuda = bool(torch.cuda.is_available())
        except ImportError:
            cuda = False
        if not cuda:
            skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
            for item in gpu_items:
                item.add_marker(skip)
    if not os.environ.get("LBSMATTE_NUKE_EXE"):
        skip = pytest.mark.skip(reason="needs a real Nuke: set LBSMATTE_NUKE_EXE to the Nuke executable")
        for item in items:
            if item.get_closest_marker("nuke") is not None:
                item.add_marker(skip)
