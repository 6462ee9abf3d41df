"""*Troubleshoot*: check the installation and say what is wrong, in words.

Checks, in the order a broken install usually fails:

1. the interpreter that runs ``core`` (``LBSMATTE_PYTHON``, the install config, a ``.venv``,
   ``python3``): found, Python 3.10+;
2. in that interpreter: ``core`` and ``core.cli`` import, ``torch`` (and whether CUDA works,
   with the GPU's name), OpenImageIO;
3. weights bundles: found (``default`` first), the selected one sound (checksums and
   architecture, by ``core.weights.verify_bundle`` in the subprocess), trained;
4. the cache folder: creatable, writable, free space.

Also runs without Nuke: ``python -m nuke_plugin.troubleshoot [WEIGHTS] [CACHE_DIR]``.
"""

import json
import os
import shutil
import subprocess
import sys

from nuke_plugin import bundles, cache, interpreter
from nuke_plugin.errors import NodeError
from nuke_plugin.progress import print_line

OK, WARN, FAIL = "OK", "WARN", "FAIL"
PROBE_BUNDLE_TITLE = "the selected weights bundle has problems"

PROBE = r"""
import json, sys
info = {"python": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable}
try:
    import core
    info["core"] = core.__file__
    info["core_version"] = getattr(core, "__version__", "?")
except Exception as exc:
    info["core_error"] = "%s: %s" % (type(exc).__name__, exc)
try:
    import core.cli  # noqa: F401
    info["cli"] = True
except Exception as exc:
    info["cli_error"] = "%s: %s" % (type(exc).__name__, exc)
try:
    import torch
    info["torch"] = torch.__version__
    info["cuda"] = bool(torch.cuda.is_available())
    info["cuda_build"] = torch.version.cuda
    if info["cuda"]:
        info["cuda_device"] = torch.cuda.get_device_name(0)
except Exception as exc:
    info["torch_error"] = "%s: %s" % (type(exc).__name__, exc)
try:
    import OpenImageIO
    info["oiio"] = OpenImageIO.__version__
except Exception as exc:
    info["oiio_error"] = "%s: %s" % (type(exc).__name__, exc)
if len(sys.argv) > 1 and "core_error" not in info:
    try:
        from core.weights import verify_bundle
        info["bundle_problems"] = verify_bundle(sys.argv[1])
    except Exception as exc:
        info["bundle_problems"] = ["cannot check the bundle: %s: %s" % (type(exc).__name__, exc)]
print("LBSMATTE PROBE " + json.dumps(info))
"""


class Check(object):
    """One finding: ``status`` (OK/WARN/FAIL), a title and optional detail lines."""

    def __init__(self, status, title, detail=""):
        self.status = status
        self.title = title
        self.detail = detail

    def __repr__(self):
        return "Check(%r, %r)" % (self.status, self.title)


def probe(python, weights=None, timeout=180):
    """Run :data:`PROBE` in ``python``; the dict it prints, or ``{"error": ...}``."""
    command = [python, "-c", PROBE] + ([weights] if weights else [])
    try:
        out = subprocess.check_output(command, env=interpreter.child_environment(),
                                      stderr=subprocess.STDOUT, timeout=timeout, **interpreter.no_window())
    except subprocess.CalledProcessError as exc:
        return {"error": "exited with status %s: %s" % (exc.returncode, exc.output.decode("utf-8", "replace")[-2000:])}
    except subprocess.TimeoutExpired:
        return {"error": "did not answer within %d s" % timeout}
    except OSError as exc:
        return {"error": "cannot be started: %s" % exc}
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith("LBSMATTE PROBE "):
            try:
                return json.loads(line[len("LBSMATTE PROBE "):])
            except ValueError:
                break
    return {"error": "printed no answer: %s" % out.decode("utf-8", "replace")[-2000:]}


_FIX_PYTHON = ("Set LBSMATTE_PYTHON to the python of the environment where lbsmatte is installed,\n"
               "or run `python -m nuke_plugin.interpreter --write-config` with that python.")


_FIX_COPY = "Copy the bundle again (manifest.json and the three .safetensors files)."


def check_interpreter(python, source):
    if os.path.dirname(python):
        found = interpreter.executable_file(python) or (python if os.path.isdir(python) else None)
    else:
        found = shutil.which(python)
    if not found:
        why = interpreter.why_missing(python) if os.path.dirname(python) else ""
        return Check(FAIL, "Python for LBSMatte not found: %s (from %s)" % (python, _source(source)),
                     (why[0].upper() + why[1:] + ".\n" if why else "") + _FIX_PYTHON)
    if os.path.isdir(found):
        return Check(FAIL, "Python for LBSMatte is a folder, not a program: %s (from %s)" % (found, _source(source)),
                     "Name the python executable itself (e.g. %s).\n%s" % (_python_in(found), _FIX_PYTHON))
    if not os.access(found, os.X_OK):
        return Check(FAIL, "Python for LBSMatte is not executable: %s (from %s)" % (found, _source(source)),
                     "Make it executable (chmod +x) or name another one.\n" + _FIX_PYTHON)
    if os.path.dirname(python) and not os.path.isabs(os.path.expanduser(python)):
        return Check(WARN, "Python for LBSMatte is a relative path: %s (from %s)" % (python, _source(source)),
                     "It is found from the folder Nuke was started in (%s) only: a Nuke started elsewhere (the farm,\n"
                     "another shot's folder) does not find it. Give an absolute path." % os.getcwd())
    return Check(OK, "Python for LBSMatte: %s (from %s)" % (found, _source(source)))


def _source(source):
    """Where the interpreter came from, for people: the install config by its file."""
    return "the install config %s" % interpreter.config_path() if source == "config" else source


def _python_in(folder):
    """The python in environment ``folder`` where it has one, else where a virtual environment's
    would be: a venv's (``Scripts`` on Windows, where ``<folder>/python.exe`` was named and is
    none), a conda environment's or a Python install's (on Windows at its top), or in the ``bin``
    folder named itself."""
    places = ((("Scripts", "python.exe"), ("python.exe",)) if os.name == "nt" else
              (("bin", "python"), ("bin", "python3"), ("python",), ("python3",)))
    candidates = [os.path.join(folder, *parts) for parts in places]
    return next((c for c in candidates if os.path.isfile(c)), candidates[0])


def check_probe(info, python="python"):
    """Turn the probe's answer into findings (``python``: the interpreter, named in the fixes)."""
    folder = _checkout()
    install = ("Install LBSMatte's requirements into that Python (%s -m pip install -e %s),\n"
               "or set LBSMATTE_PYTHON to the python of the environment where they are installed." % (python, folder))
    if "error" in info:
        base = interpreter.missing_base(python)
        if base:
            info = dict(info, error=info["error"] + "\nIts virtual environment was made from the Python in %s, which "
                        "this machine lacks:\ninstall that Python at the same path on every machine, or make the "
                        "environment with a Python on the share." % base)
        return [Check(FAIL, "the LBSMatte Python does not run", info["error"] + "\n"
                      + "Check that %s is a Python 3.10+ interpreter: run `%s -c \"import core, torch\"`.\n%s"
                      % (python, python, _FIX_PYTHON))]
    checks = []
    try:
        version = tuple(int(x) for x in str(info.get("python", "0.0.0")).split(".")[:3])
    except ValueError:
        version = (0, 0, 0)
    if version < (3, 10):
        checks.append(Check(FAIL, "Python %s is too old: core needs 3.10 or newer" % info.get("python"), _FIX_PYTHON))
        # pip refuses LBSMatte there ("requires a different Python"): no package failure below is fixed so
        install = ("Installing into Python %s cannot fix this (core needs 3.10 or newer): make an environment with a\n"
                   "Python 3.10+ (python3.11 -m venv <env>; <env>/bin/python -m pip install -e %s) and set\n"
                   "LBSMATTE_PYTHON to its python." % (info.get("python"), folder))
    else:
        checks.append(Check(OK, "Python %s" % info.get("python")))
    if "core_error" in info:
        checks.append(Check(FAIL, "the core package does not import", info["core_error"] + "\n" + install
                            + "\n(LBSMATTE_PYTHONPATH adds the folder holding core to its path.)"))
    else:
        checks.append(Check(OK, "core %s at %s" % (info.get("core_version"), os.path.dirname(info.get("core", "")))))
    if "cli_error" in info:
        checks.append(Check(FAIL, "core.cli does not import", info["cli_error"] + "\n" + install))
    if "torch_error" in info:
        checks.append(Check(FAIL, "torch does not import", info["torch_error"] + "\n" + install))
    elif info.get("cuda"):
        checks.append(Check(OK, "torch %s, CUDA %s on %s" % (info.get("torch"), info.get("cuda_build"), info.get("cuda_device"))))
    else:
        detail = ("this torch is built without CUDA (a CPU-only wheel): install a CUDA build of torch into %s" % python
                  if not info.get("cuda_build")
                  else "torch is built for CUDA %s but sees no GPU: check the NVIDIA driver (nvidia-smi) and "
                       "CUDA_VISIBLE_DEVICES" % info.get("cuda_build"))
        checks.append(Check(WARN, "torch %s: no CUDA, mattes are computed on the CPU (slow)" % info.get("torch"), detail))
    if "oiio_error" in info:
        checks.append(Check(FAIL, "OpenImageIO does not import", info["oiio_error"] + "\n" + install))
    else:
        checks.append(Check(OK, "OpenImageIO %s" % info.get("oiio")))
    problems = info.get("bundle_problems")
    if problems and "torch_error" in info:
        # Without torch the architectures cannot be checked: torch's failure, reported above.
        problems = [p for p in problems if not p.startswith("cannot import the networks")]
    if problems:
        checks.append(Check(FAIL, PROBE_BUNDLE_TITLE, "\n".join(problems) + "\n"
                            + _FIX_COPY + " Or pick another with Browse..."))
    return checks


def _checkout():
    """The LBSMatte folder to ``pip install -e`` (quoted when it holds a space), or a placeholder
    where this ``nuke_plugin`` is an installed package's."""
    root = interpreter.plugin_root()
    if not os.path.isfile(os.path.join(root, "init.py")):
        return "<LBSMatte folder>"
    return '"%s"' % root if " " in root else root


def check_bundles(weights=None, core_dir=None, base=None):
    """Findings about the bundles found and the one selected (manifests only, no checksums); a
    relative folder in ``weights`` is read from ``base`` (the script's folder, as Compute reads it)."""
    checks = []
    skipped = []
    try:
        found = bundles.find_bundles(core_dir=core_dir, problems=skipped)
    except Exception as exc:  # never let Troubleshoot itself fail
        return [Check(FAIL, "the weights bundles cannot be searched", "%s: %s" % (type(exc).__name__, exc))]
    path = os.environ.get(bundles.WEIGHTS_PATH_ENV, "")
    for entry in bundles.search_path():
        if not os.path.isabs(entry):  # found, or not, by where Nuke was started: the farm starts elsewhere
            checks.append(Check(WARN, "%s entry %s is a relative path" % (bundles.WEIGHTS_PATH_ENV, entry),
                                "It is read from the folder Nuke was started in (%s), which differs between the "
                                "artists' Nuke\nand the farm's: give an absolute path." % os.getcwd()))
    for folder, reason in skipped:
        if "shadowed" in reason:
            checks.append(Check(WARN, "%s ignored" % folder, reason + "\nRename one of the two (the manifest's name) "
                                "to use both."))
        elif reason.startswith(bundles.WEIGHTS_PATH_ENV):
            checks.append(Check(WARN, reason, "Fix or remove this entry of %s=%s" % (bundles.WEIGHTS_PATH_ENV, path)))
        else:
            fix = "" if "update LBSMatte" in reason else "\n" + _FIX_COPY
            checks.append(Check(WARN, "broken weights bundle skipped: %s" % folder, reason + fix))
    if not found:
        checks.append(Check(FAIL, "no weights bundles found",
                            "searched %s and %s=%r" % (bundles.default_bundle_dir(core_dir), bundles.WEIGHTS_PATH_ENV, path)))
        return checks
    names = ["%s%s" % (b.name, "" if b.trained else " (untrained)") for b in found]
    status = OK if found[0].name == bundles.DEFAULT_NAME else WARN
    title = "bundles: %s" % ", ".join(names)
    if status == WARN:
        title += " (the packaged default bundle is missing)"
    checks.append(Check(status, title))
    if weights:
        selected = bundles.resolve_bundle(weights, core_dir=core_dir, base=base)
        if selected is None:
            why = bundles.why_not_found(weights, core_dir=core_dir, base=base)  # as Compute says it
            checks.append(Check(FAIL, "the weights knob names %r, which is not found" % weights,
                                (why + "\n" if why else "")
                                + "Pick a bundle with Browse..., or add its folder to %s." % bundles.WEIGHTS_PATH_ENV))
        else:
            if selected.problems():
                checks.append(Check(FAIL, "the selected weights bundle %r is broken (%s)" % (selected.name, selected.path),
                                    "\n".join(selected.problems()) + "\n" + _FIX_COPY))
            if not selected.trained:
                checks.append(Check(WARN, "%r holds untrained networks (test bundle): the pipeline refuses it"
                                          " unless LBSMATTE_ALLOW_UNTRAINED=1" % selected.name))
    return checks


def check_cache(folder):
    """The cache folder: creatable, writable, free space."""
    try:
        os.makedirs(folder, exist_ok=True)  # made meanwhile by another session: no failure
        cache.probe_writable(folder)  # as Compute tries it
    except (OSError, IOError) as exc:
        return Check(FAIL, "cache folder %s is not writable" % folder,
                     "%s\nSet the node's cache folder knob (or LBSMATTE_CACHE) to a folder you can write to." % exc)
    free = shutil.disk_usage(folder).free / float(1 << 30)
    if free < 5:
        return Check(WARN, "cache folder %s: only %.1f GiB free" % (folder, free))
    return Check(OK, "cache folder %s (%.0f GiB free)" % (folder, free))


def check_install(weights=None, cache_folder=None, run_probe=True, base=None):
    """Every check that does not need Nuke; a list of :class:`Check`. Never raises. A relative
    folder in ``weights`` is read from ``base`` (the node's script's folder), as Compute reads it."""
    checks = [Check(OK, "Nuke-side Python %d.%d.%d, nuke_plugin at %s"
                    % (sys.version_info[0], sys.version_info[1], sys.version_info[2],
                       os.path.dirname(os.path.abspath(__file__))))]
    interp = None
    try:
        python, source = interpreter.core_python()
        interp = check_interpreter(python, source)
        checks.append(interp)
        foreign = interpreter.configured("python")[1] if source != "config" else None
        if foreign:  # a shared folder's config written on another system: said, as it is ignored
            checks.append(Check(WARN, "the install config %s holds the python of another system (%s), none for "
                                      "this %s machine" % (interpreter.config_path(), foreign, interpreter.platform_key()),
                                "Run `python -m nuke_plugin.interpreter --write-config` on this machine too, with its "
                                "Python 3.10+\n(each system keeps its own entry), or set LBSMATTE_PYTHON here."))
        if interp.status == OK and run_probe:
            named_folder = weights and bundles.names_folder(weights)
            checks.extend(check_probe(probe(python, bundles.knob_folder(weights, base) if named_folder else weights),
                                      python))
    except Exception as exc:
        checks.append(_crashed("the LBSMatte Python", exc))
    try:
        core = interpreter.core_dir(python) if interp is not None and interp.status == OK else None
        found = check_bundles(weights, core, base)
        if any(c.title == PROBE_BUNDLE_TITLE for c in checks):  # the probe said it already, in full
            found = [c for c in found if not c.title.startswith("the selected weights bundle")]
        checks.extend(found)
    except Exception as exc:
        checks.append(_crashed("the weights bundles", exc))
    if cache_folder:
        try:
            checks.append(check_cache(cache_folder))
        except Exception as exc:
            checks.append(_crashed("the cache folder", exc))
    return checks


def _crashed(what, exc):
    return Check(FAIL, "checking %s failed: %s: %s" % (what, type(exc).__name__, exc),
                 "This is a bug in LBSMatte's Troubleshoot; the checks below still ran.")


def format_checks(checks):
    """Text for a message box: a verdict, then one line per check (detail indented)."""
    failures = [c for c in checks if c.status == FAIL]
    warnings = [c for c in checks if c.status == WARN]
    if failures:
        head = "LBSMatte: %d problem(s) to fix" % len(failures)
    elif warnings:
        head = "LBSMatte works, with %d warning(s)" % len(warnings)
    else:
        head = "LBSMatte: the installation looks good"
    lines = [head, ""]
    for check in checks:
        lines.append("%-4s  %s" % (check.status, check.title))
        for detail in check.detail.splitlines():
            lines.append("      %s" % detail)
    return "\n".join(lines)


def check_copies(plugin_path, gizmo_dir=None):
    """Findings when LBSMatte is on the plugin path more than once (two versions: ``init.py`` loads
    the first and says so, :file:`init.py`), or its gizmo comes from another LBSMatte folder than
    the Python code in use (``gizmo_dir``: the folder the ``LBSMatte.gizmo`` in use is in)."""
    mine = os.path.realpath(interpreter.plugin_root())
    copies = []
    for folder in plugin_path:
        if all(os.path.isfile(os.path.join(folder, *f)) for f in
               (("init.py",), ("nuke_plugin", "interpreter.py"), ("gizmos", "LBSMatte.gizmo"))) \
                and os.path.realpath(folder) not in [os.path.realpath(c) for c in copies]:
            copies.append(folder)
    checks = []
    others = [c for c in copies if os.path.realpath(c) != mine]
    if others:
        checks.append(Check(WARN, "LBSMatte is on the plugin path %d times: %s is used, %s ignored"
                            % (len(copies), interpreter.plugin_root(), ", ".join(others)),
                            "Remove the one not wanted from NUKE_PATH (or the init.py that adds it with "
                            "nuke.pluginAddPath): the\nartists' and the farm's Nuke may otherwise load different "
                            "versions."))
    if gizmo_dir and os.path.realpath(os.path.dirname(os.path.normpath(gizmo_dir))) != mine:
        checks.append(Check(FAIL, "LBSMatte.gizmo comes from %s, but the node's Python from %s"
                            % (gizmo_dir, interpreter.plugin_root()),
                            "Put one LBSMatte folder on the plugin path (NUKE_PATH), not a gizmos folder of "
                            "another version."))
    return checks


def troubleshoot_node(node, run_probe=True):
    """All checks for one LBSMatte node (its weights and cache folder), as text."""
    import nuke

    from nuke_plugin import node as lbs_node

    checks = []
    gizmo_dirs = [p for p in nuke.pluginPath() if os.path.isfile(os.path.join(p, "LBSMatte.gizmo"))]
    checks.append(Check(OK, "Nuke %s, gizmo from %s" % (nuke.NUKE_VERSION_STRING, gizmo_dirs[0]))
                  if gizmo_dirs else Check(WARN, "Nuke %s: LBSMatte.gizmo is not on the plugin path" % nuke.NUKE_VERSION_STRING,
                                           "add the LBSMatte folder to NUKE_PATH (or nuke.pluginAddPath in init.py)"))
    checks.extend(check_copies(nuke.pluginPath(), gizmo_dirs[0] if gizmo_dirs else None))
    try:
        cache_folder = lbs_node.cache_dir(node)
    except NodeError as exc:  # a folder Nuke would put the frame number in: Compute refuses it
        checks.append(Check(FAIL, "cache folder refused", str(exc)))
        cache_folder = None
    except Exception as exc:  # a TCL error in the knob
        checks.append(Check(FAIL, "cache folder knob cannot be evaluated", str(exc)))
        cache_folder = None
    checks.extend(check_install(lbs_node.weights_folder_text(node), cache_folder, run_probe=run_probe,
                                base=lbs_node.script_folder()))
    return format_checks(checks)


def main(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    weights = args[0] if args else None
    folder = args[1] if len(args) > 1 else None
    checks = check_install(weights, folder)
    print_line(format_checks(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
