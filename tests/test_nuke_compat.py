"""nuke_plugin, init.py and menu.py import under Nuke 13's Python 3.7 with only the standard
library, ``nuke`` and the Qt binding."""

import ast
import io
import os
import re
import sys
import tokenize

import pytest
from fake_nuke.fixtures import REPO

FILES = sorted(
    [os.path.join(REPO, "nuke_plugin", f) for f in os.listdir(os.path.join(REPO, "nuke_plugin")) if f.endswith(".py")]
    + [os.path.join(REPO, "init.py"), os.path.join(REPO, "menu.py")]
)
#: Standard-library modules newer than 3.7 (sys.stdlib_module_names is 3.11's list).
NEWER_STDLIB = {"tomllib", "zoneinfo", "graphlib", "_zoneinfo"}
ALLOWED = {"nuke", "nuke_plugin", "PySide2", "PySide6", "core"}
#: Calls and names that do not exist in Python 3.7.
NEWER_API = ("removeprefix(", "removesuffix(", "functools.cache(", "cached_property", "math.prod(",
             "shlex.join(", "missing_ok=", "dirs_exist_ok=", "TypedDict", "Literal[", "Protocol", "Final[",
             "importlib.metadata", "is_relative_to(", "str | None", "int | None")


#: Builtins that take ``[...]`` only from Python 3.9 (PEP 585).
BUILTIN_GENERICS = {"list", "dict", "tuple", "set", "frozenset", "type"}


def _rel(path):
    return os.path.relpath(path, REPO)


def _evaluated_annotations(tree):
    """The annotations Python 3.7 evaluates when the module is imported or a function defined: every
    parameter's and return annotation, and module- and class-level ``name: annotation`` (a function's
    local ones are never evaluated); none under ``from __future__ import annotations``."""
    if any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
           and any(a.name == "annotations" for a in node.names) for node in tree.body):
        return []
    found = []

    def visit(body, in_function):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                every = args.posonlyargs + args.args + args.kwonlyargs + [a for a in (args.vararg, args.kwarg) if a]
                found.extend(a.annotation for a in every if a.annotation is not None)
                if node.returns is not None:
                    found.append(node.returns)
                visit(node.body, True)
            elif isinstance(node, ast.ClassDef):
                visit(node.body, in_function)
            elif isinstance(node, ast.AnnAssign) and not in_function:
                found.append(node.annotation)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(node, field, None)
                    if isinstance(inner, list):
                        visit(inner, in_function)

    visit(tree.body, False)
    return found


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_python_37_syntax(path):
    source = open(path).read()
    tree = ast.parse(source, filename=path, feature_version=(3, 7))
    for node in ast.walk(tree):
        assert not isinstance(node, ast.NamedExpr), f"walrus in {_rel(path)}"
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            assert not args.posonlyargs, f"positional-only parameters in {_rel(path)}"
    for annotation in _evaluated_annotations(tree):
        text = ast.unparse(annotation)
        for part in ast.walk(annotation):
            # list[str] (3.9) and str | None (3.10) raise TypeError when Python 3.7 evaluates them
            assert not (isinstance(part, ast.Subscript) and isinstance(part.value, ast.Name)
                        and part.value.id in BUILTIN_GENERICS), f"{_rel(path)}: {text}"
            assert not (isinstance(part, ast.BinOp) and isinstance(part.op, ast.BitOr)), f"{_rel(path)}: {text}"
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.STRING and re.match(r"^[rbuRBU]*[fF]", token.string):
            assert not re.search(r"=\s*(![rsa])?(:[^}]*)?}", token.string), f"f-string '=' in {_rel(path)}"
    for api in NEWER_API:
        assert api not in source, f"{_rel(path)} uses {api} (not in Python 3.7)"


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_imports_are_stdlib_nuke_or_own(path):
    tree = ast.parse(open(path).read())
    stdlib = set(sys.stdlib_module_names) - NEWER_STDLIB
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module.split(".")[0]]
        else:
            continue
        for name in names:
            assert name in stdlib or name in ALLOWED, f"{_rel(path)} imports {name}"
            if name == "core":  # only interpreter.write_config, which runs outside Nuke at install time
                assert _rel(path) == os.path.join("nuke_plugin", "interpreter.py")
            if name in ("PySide2", "PySide6"):
                assert _rel(path) == os.path.join("nuke_plugin", "qt.py"), "Qt only through nuke_plugin/qt.py"


def test_no_module_imports_torch_or_core_at_import_time():
    """Importing every module with the fake nuke pulls in neither torch nor core."""
    import subprocess

    code = ("import sys; sys.path.insert(0, {!r})\n"
            "import nuke_plugin.batch, nuke_plugin.buttons, nuke_plugin.callbacks, nuke_plugin.compute, "
            "nuke_plugin.troubleshoot, nuke_plugin.bundles, nuke_plugin.exr\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'core', 'numpy', 'OpenImageIO'))\n"
            "print(bad)".format(os.path.join(REPO, "tests", "fake_nuke")))
    env = dict(os.environ)
    env.pop("NUKE_PATH", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    # the fake nuke itself uses numpy and OpenImageIO; nuke_plugin must not add torch or core
    assert "torch" not in done.stdout and "'core" not in done.stdout, done.stdout


def _python37():
    import glob
    import shutil

    candidates = [os.environ.get("LBSMATTE_TEST_PYTHON37"), shutil.which("python3.7")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.7*/bin/python3.7")))
    for candidate in candidates:
        if not candidate:
            continue
        try:
            import subprocess

            out = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 7))"],
                                 capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.stdout.strip() == "True":
            return candidate
    return None


# A stand-in for ``nuke`` that only records what init.py asks for: under Python 3.7 there is no
# numpy/OpenImageIO for the full fake, and import-time behaviour is all this checks.
_NUKE37 = '''
EXE_PATH = "/opt/Nuke13.2v1/Nuke13.2"
GUI = False
calls = []
def pluginAddPath(path, addToSysPath=True):
    calls.append(("pluginAddPath", path))
def pluginPath():
    return []
def addOnCreate(call, args=(), kwargs=None, nodeClass="*"):
    calls.append(("addOnCreate", nodeClass))
def addKnobChanged(call, args=(), kwargs=None, nodeClass="*", node=None):
    calls.append(("addKnobChanged", nodeClass))
def addUpdateUI(call, args=(), kwargs=None, nodeClass="*"):
    calls.append(("addUpdateUI", nodeClass))
def addBeforeRender(call, args=(), kwargs=None, nodeClass="Write"):
    calls.append(("addBeforeRender", nodeClass))
def addBeforeFrameRender(call, args=(), kwargs=None, nodeClass="Write"):
    calls.append(("addBeforeFrameRender", nodeClass))
def addOnScriptClose(call, args=(), kwargs=None, nodeClass="Root"):
    calls.append(("addOnScriptClose", nodeClass))
class Layer(object):
    def __init__(self, name, channels):
        calls.append(("Layer", name, tuple(channels)))
def menu(name):
    raise RuntimeError("no menus in nuke -t")
'''


def test_imports_and_runs_under_python_37(tmp_path):
    """With a real Python 3.7 (Nuke 13's): import every module, run init.py/menu.py, compute a
    key, hash an EXR and run a subprocess — and get the same answers as Python 3.11."""
    import json
    import subprocess

    python37 = _python37()
    if python37 is None:
        pytest.skip("no Python 3.7 here (set LBSMATTE_TEST_PYTHON37)")
    (tmp_path / "nuke.py").write_text(_NUKE37)
    import numpy as np
    from fake_nuke.fixtures import write_exr

    exr_path = str(tmp_path / "a.exr")
    write_exr(exr_path, np.random.default_rng(0).uniform(0, 2, (9, 7, 3)), ["R", "G", "B"])
    code = '''
import json, sys
sys.path[:0] = [%(stub)r, %(repo)r]
import nuke
import nuke_plugin.batch, nuke_plugin.buttons, nuke_plugin.bundles, nuke_plugin.cache, nuke_plugin.callbacks
import nuke_plugin.compute, nuke_plugin.errors, nuke_plugin.exr, nuke_plugin.interpreter, nuke_plugin.node
import nuke_plugin.progress, nuke_plugin.runner, nuke_plugin.troubleshoot
from nuke_plugin import batch, cache, exr, runner
for name in ("init.py", "menu.py"):
    exec(compile(open(%(repo)r + "/" + name).read(), name, "exec"), {"__name__": "__main__", "__file__": %(repo)r + "/" + name})
ran = runner.run([sys.executable, "-c", "print('LBSMATTE PROGRESS 7 1/1')"])
print("RESULT " + json.dumps({
    "version": list(sys.version_info[:2]), "calls": nuke.calls,
    "key": cache.Settings(weights="show", bundle_sha256="ab" * 32, colour="srgb").key(),
    "exr": exr.content_sha256(%(exr)r), "frames": ran.frames_done, "ok": ran.ok,
    "args": batch.parse_frames("1001-1100"), "back": batch.parse_frames("3-1,7"),
}))
''' % {"stub": str(tmp_path), "repo": REPO, "exr": exr_path}  # noqa: UP031 (a template with braces)
    env = dict(os.environ, PYTHONPATH="")
    env.pop("PYTHONHOME", None)
    done = subprocess.run([python37, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                          cwd=str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads([line for line in done.stdout.splitlines() if line.startswith("RESULT ")][-1][7:])
    from nuke_plugin import cache, exr

    assert result["version"] == [3, 7]
    assert ["pluginAddPath", os.path.join(REPO, "gizmos")] in result["calls"]
    assert ["addOnCreate", "LBSMatte"] in result["calls"] and ["addKnobChanged", "LBSMatte"] in result["calls"]
    assert ["addUpdateUI", "LBSMatte"] in result["calls"] and ["addBeforeFrameRender", "*"] in result["calls"]
    assert result["key"] == cache.Settings(weights="show", bundle_sha256="ab" * 32, colour="srgb").key()
    assert result["exr"] == exr.content_sha256(exr_path)
    assert result["frames"] == [7] and result["ok"] and result["args"] == list(range(1001, 1101))
    assert result["back"] == [3, 2, 1, 7]
    assert "LBSMatte" not in done.stderr, done.stderr  # init.py loaded without a warning
