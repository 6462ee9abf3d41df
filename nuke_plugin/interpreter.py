"""Which Python runs ``core``, and the environment it runs in.

``core`` needs Python 3.10+, torch and OpenImageIO; Nuke's own Python (3.7 to 3.11, with Nuke's
DLLs) has none of them, so ``core`` always runs as a separate process. The interpreter is, in
order:

1. ``LBSMATTE_PYTHON`` (an absolute path, or a command found on ``PATH``);
2. ``python`` recorded in ``nuke_plugin/lbsmatte.json``, written at install time by running,
   with the interpreter ``core`` is installed in::

       python -m nuke_plugin.interpreter --write-config

   (one entry per system, :func:`configured`: a shared folder's config written on Windows is
   not run on Linux);

3. a virtual environment next to the checkout: ``<repo>/.venv/bin/python``
   (``.venv\\Scripts\\python.exe`` on Windows);
4. ``python3`` from ``PATH`` (``python`` on Windows).

The child process gets Nuke's environment minus what belongs to Nuke's own Python and
libraries (``PYTHONHOME``, ``PYTHONPATH``, Nuke's folder on ``LD_LIBRARY_PATH``/``PATH``), so
Nuke's Python version and DLLs never leak into it; ``LBSMATTE_PYTHONPATH`` adds entries of its
own to the child's ``PYTHONPATH``.
"""

import json
import os
import re
import subprocess
import sys

from nuke_plugin.progress import print_line

PYTHON_ENV = "LBSMATTE_PYTHON"
#: Extra ``PYTHONPATH`` entries for the core process (Nuke's own PYTHONPATH is never passed on).
EXTRA_PATH_ENV = "LBSMATTE_PYTHONPATH"
CONFIG_NAME = "lbsmatte.json"

#: Variables of Nuke's embedded Python that must not reach another interpreter.
_PYTHON_VARIABLES = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "PYTHONSAFEPATH")
#: Library search paths that Nuke's launcher may point at its own folder.
_LIBRARY_VARIABLES = ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "DYLD_FALLBACK_LIBRARY_PATH", "PATH")

_core_dir_cache = {}


def plugin_root():
    """The folder holding ``nuke_plugin`` (the checkout, or ``site-packages``)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config_path():
    """Where ``--write-config`` records the interpreter: ``nuke_plugin/lbsmatte.json``."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), CONFIG_NAME)


def read_config(path=None):
    """The install-time config as a dict (empty when missing or unreadable)."""
    try:
        with open(path or config_path(), "rb") as handle:
            config = json.loads(handle.read().decode("utf-8"))
    except (OSError, IOError, ValueError, UnicodeDecodeError):
        return {}
    return config if isinstance(config, dict) else {}


def write_config(path=None, python=None, core=None):
    """Record ``python`` (default: this interpreter) and its ``core`` folder for Nuke to find.

    Returns the path written.
    """
    python = python or sys.executable
    if core is None:
        try:
            import core as core_package  # noqa: F401  (only when run outside Nuke, at install)

            core = os.path.dirname(os.path.abspath(core_package.__file__))
        except ImportError:
            core = None
    target = path or config_path()
    # One config for the artists' Windows and the farm's Linux reading the same shared folder:
    # each system's entry is kept, ``--write-config`` run on each adds its own.
    old = read_config(target)
    platforms = old.get("platforms") if isinstance(old.get("platforms"), dict) else {}
    platforms = dict(platforms, **{platform_key(): {"python": python, "core_dir": core}})
    data = {"python": python, "core_dir": core, "platforms": platforms}
    tmp = target + ".tmp"
    try:
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return target


def platform_key():
    """This system's entry in the install config: ``windows``, ``linux``, ``darwin``."""
    return "windows" if os.name == "nt" else sys.platform.rstrip("0123456789")


def _foreign(path):
    """Whether ``path`` is another system's absolute path: ``C:\\...`` or ``\\\\server`` on Linux or
    macOS, ``/...`` on Windows."""
    if os.name == "nt":
        return path.startswith("/")
    return bool(re.match(r"^([A-Za-z]:[\\/]|\\\\)", path))


def configured(key, config=None):
    """``key`` (``python`` or ``core_dir``) of the install config for this system, and the value
    recorded for another system and so ignored (or ``None``): ``(value or None, foreign or None)``.

    The entry of this system (``platforms``) first; else the one written last, unless it is
    another system's path (the config of a shared folder written on the artists' Windows, read
    by the Linux farm)."""
    config = read_config() if config is None else config
    platforms = config.get("platforms")
    mine = platforms.get(platform_key()) if isinstance(platforms, dict) else None
    if isinstance(mine, dict) and isinstance(mine.get(key), str) and mine.get(key):
        return mine[key], None
    value = config.get(key)
    if not isinstance(value, str) or not value:
        return None, None
    return (None, value) if _foreign(value) else (value, None)


#: ``creationflags`` of CREATE_NO_WINDOW: a console program started from Nuke on Windows would
#: otherwise flash up a console window over it.
CREATE_NO_WINDOW = 0x08000000


def no_window():
    """Keyword arguments for :mod:`subprocess` that start a console program without a console
    window on Windows (``{}`` elsewhere, where ``creationflags`` is refused)."""
    return {"creationflags": CREATE_NO_WINDOW} if os.name == "nt" else {}


def executable_file(python):
    """``python`` (a path) as the file that starting it runs, or ``None``: on Windows, as
    CreateProcess does, a name without an extension is tried with ``.exe`` too."""
    if os.path.isfile(python):
        return python
    if os.name == "nt" and not os.path.splitext(python)[1] and os.path.isfile(python + ".exe"):
        return python + ".exe"
    return None


def why_missing(python):
    """Why ``python`` (a path, not found by :func:`executable_file`) cannot be started, beyond
    "it does not exist", or ``""``: a relative path (read from the folder Nuke was started in,
    which differs between the artist's Nuke, the farm and a terminal), or a virtual environment's
    link to the Python it was made from, missing on this machine (a venv made on the TD's
    workstation and shared: ``ls`` shows the file, but it leads nowhere)."""
    if not os.path.isabs(os.path.expanduser(python)):
        return ("it is a relative path, read from the folder Nuke was started in (%s): give an absolute path"
                % os.getcwd())
    if os.path.islink(python) and not os.path.exists(python):
        target = os.path.realpath(python)
        home = _venv_home(os.path.dirname(os.path.dirname(python)))
        return ("it is a link to %s, which does not exist on this machine: a virtual environment runs the "
                "Python it was made from%s. Install that Python at the same path on every machine, or make "
                "the environment with a Python on the share" % (target, " (%s)" % home if home else ""))
    return ""


def _venv_home(env_dir):
    """``home = ...`` of ``<env_dir>/pyvenv.cfg`` (where the venv's Python came from), or ``""``."""
    home = venv_home(env_dir)
    return "pyvenv.cfg: home = %s" % home if home else ""


def venv_home(env_dir):
    """The folder ``<env_dir>/pyvenv.cfg`` says the environment's Python came from, or ``""``."""
    try:
        with open(os.path.join(env_dir, "pyvenv.cfg"), "rb") as handle:
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except (OSError, IOError):
        return ""
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "home":
            return value.strip()
    return ""


def missing_base(python):
    """For the python of a virtual environment whose base Python (``pyvenv.cfg``'s ``home``) this
    machine lacks, that folder; else ``""``. Such a python (a copy, ``venv --copies``, or a
    Windows venv's launcher) exists, and fails to start without its standard library."""
    if not os.path.dirname(python):
        return ""
    home = venv_home(os.path.dirname(os.path.dirname(os.path.abspath(python))))
    return home if home and not os.path.isdir(home) else ""


def _venv_python(root):
    if os.name == "nt":
        candidate = os.path.join(root, ".venv", "Scripts", "python.exe")
    else:
        candidate = os.path.join(root, ".venv", "bin", "python")
    return candidate if os.path.isfile(candidate) else None


def core_python(environ=None):
    """The interpreter that runs ``core`` and where that choice came from.

    Returns
    -------
    (str, str)
        The executable (a path or a command name) and one of ``"LBSMATTE_PYTHON"``,
        ``"config"``, ``"venv"``, ``"PATH"``.
    """
    env = os.environ if environ is None else environ
    value = env.get(PYTHON_ENV, "").strip()
    if len(value) > 2 and value[0] == value[-1] and value[0] in "\"'":
        # Windows Explorer's "Copy as path" gives "C:\Program Files\...\python.exe" with its
        # quotes, and a value with spaces is often quoted by habit: the file has no quotes.
        value = value[1:-1].strip()
    if value:
        return value, PYTHON_ENV
    python = configured("python")[0]
    if python:
        return python, "config"
    venv = _venv_python(plugin_root())
    if venv:
        return venv, "venv"
    return ("python" if os.name == "nt" else "python3"), "PATH"


def core_dir(python=None, timeout=30):
    """Folder of the ``core`` package the subprocess will import, or ``None`` if unknown.

    Next to ``nuke_plugin`` (a checkout, or both installed in one ``site-packages``) first, then
    the install-time config, then asking the interpreter (once per interpreter, cached).
    """
    sibling = os.path.join(plugin_root(), "core")
    if os.path.isfile(os.path.join(sibling, "__init__.py")):
        return sibling
    folder = configured("core_dir")[0]
    if folder and os.path.isdir(folder):
        return folder
    python = python or core_python()[0]
    if python not in _core_dir_cache:
        code = "import core, os; print(os.path.dirname(os.path.abspath(core.__file__)))"
        try:
            out = subprocess.check_output(
                [python, "-c", code], env=child_environment(), stderr=subprocess.STDOUT, timeout=timeout,
                **no_window()
            )
            found = out.decode("utf-8", "replace").strip().splitlines()[-1]
            _core_dir_cache[python] = found if os.path.isdir(found) else None
        except (OSError, subprocess.SubprocessError, IndexError):
            _core_dir_cache[python] = None
    return _core_dir_cache[python]


def child_environment(environ=None, nuke_dir=None):
    """Environment for the ``core`` subprocess.

    Parameters
    ----------
    environ:
        The environment to start from (default ``os.environ``, i.e. Nuke's).
    nuke_dir:
        Nuke's installation folder; its entries are removed from the library search paths.
        Default: the folder of ``nuke.EXE_PATH`` when running inside Nuke.

    Returns
    -------
    dict
        A copy: Nuke's Python variables removed, ``PYTHONPATH`` set to the checkout when ``core``
        lives next to ``nuke_plugin`` there (not in an installed wheel's ``site-packages``) plus
        ``LBSMATTE_PYTHONPATH`` (for a studio's extra
        packages), unbuffered UTF-8 output. ``LBSMATTE_*`` and ``OCIO`` pass.
    """
    env = dict(os.environ if environ is None else environ)
    if nuke_dir is None:
        nuke_module = sys.modules.get("nuke")
        exe = getattr(nuke_module, "EXE_PATH", "") if nuke_module is not None else ""
        nuke_dir = os.path.dirname(exe) if exe else None
    for name in _PYTHON_VARIABLES:
        env.pop(name, None)
    if nuke_dir:
        nuke_real = os.path.normcase(os.path.realpath(nuke_dir))
        for name in _LIBRARY_VARIABLES:
            if name not in env:
                continue
            kept = [
                p
                for p in env[name].split(os.pathsep)
                if p and not _inside(os.path.normcase(os.path.realpath(p)), nuke_real)
            ]
            if kept:
                env[name] = os.pathsep.join(kept)
            elif name != "PATH":
                env.pop(name)
            else:
                env[name] = ""
    paths = []
    root = plugin_root()
    # The checkout (the folder on NUKE_PATH, with its init.py), never an install's site-packages:
    # that would put one environment's compiled packages (torch, OpenImageIO) before another
    # interpreter's own, and ``python -m nuke_plugin.troubleshoot`` run from a wheel's venv judged
    # python3 from PATH by the venv's packages (OK without any installed; torch failing to import
    # where the Pythons' versions differ).
    if os.path.isfile(os.path.join(root, "core", "__init__.py")) and os.path.isfile(os.path.join(root, "init.py")):
        paths.append(root)
    paths += [p for p in env.get(EXTRA_PATH_ENV, "").split(os.pathsep) if p]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _inside(path, folder):
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def main(argv=None):
    """``python -m nuke_plugin.interpreter [--write-config]``: show or record the interpreter."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--write-config"]:
        if not os.path.isfile(os.path.join(plugin_root(), "init.py")):
            # An installed wheel's nuke_plugin, which Nuke never loads: it reads the config beside
            # the nuke_plugin of the folder on NUKE_PATH, and pip uninstall would leave this one.
            print("ERROR: %s is an installed package, not the LBSMatte folder on NUKE_PATH whose config Nuke "
                  "reads: run this in that folder (cd <LBSMatte folder> && %s -m nuke_plugin.interpreter "
                  "--write-config), or set LBSMATTE_PYTHON=%s in Nuke's environment instead"
                  % (os.path.dirname(config_path()), sys.executable, sys.executable), file=sys.stderr)
            return 1
        try:
            print_line("wrote %s" % write_config())
        except OSError as exc:  # a read-only install (artists' view of a studio checkout)
            print("ERROR: cannot write the install config %s: %s. Run this as a user who may write there, or "
                  "set LBSMATTE_PYTHON=%s in Nuke's environment instead" % (config_path(), exc, sys.executable),
                  file=sys.stderr)
            return 1
        return 0
    if args:
        print("usage: python -m nuke_plugin.interpreter [--write-config]", file=sys.stderr)
        return 2
    python, source = core_python()
    print_line("python: %s (from %s)" % (python, source))
    print_line("core:   %s" % core_dir(python))
    return 0


if __name__ == "__main__":
    sys.exit(main())
