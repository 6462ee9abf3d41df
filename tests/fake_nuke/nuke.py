# ruff: noqa: UP004, UP031  (written like nuke_plugin, which ruff.toml exempts from UP for Nuke 13's Python 3.7)
"""A strict, hand-written fake of Foundry Nuke's ``nuke`` module, for LBSMatte's tests.

Only what ``nuke_plugin``, ``init.py`` and ``menu.py`` use, and it behaves like Nuke where it
matters to them:

- every public name here exists in the ``types-nuke`` stubs (``tests/test_nuke_fake.py``
  checks it), and an unknown attribute raises ``AttributeError``; ``node['missing']`` raises
  ``NameError`` as in Nuke; enumeration knobs refuse values not in their menu;
- as in Nuke, ``input()``, ``toNode``, ``allNodes``, ``Group.node``/``nodes`` and ``thisNode``
  hand out a new Python object for a node on each call: ``==`` and ``hash()`` follow the node,
  ``is`` and ``id()`` do not;
- nodes, knobs, groups with ``with group:`` / ``begin()`` / ``end()``, ``createNode``,
  ``toNode``, ``allNodes`` (``recurseGroups`` goes into gizmos too: a gizmo is a group),
  ``delete``; gizmos are built from the ``.gizmo`` file found on the plugin path
  (``pluginAddPath``), inside and out;
- images are real: ``Read`` reads the files its ``file`` knob names with OpenImageIO,
  ``execute`` of a ``Write`` writes real EXR frames from its input, a ``Copy`` puts channel ``from0``
  of its A input into ``to0`` of its B input;
- knob expressions ``{{parent.x}}`` / ``{{!parent.x}}`` / ``{{frame}}`` and the TCL
  ``[value parent.x]`` are evaluated, keyframes too (``setAnimated``, ``setValueAt``,
  ``getValueAt``, ``{{curve x1 4 x10 20}}`` in scripts); any other TCL or expression raises (a fake that guesses hides bugs);
  as in Nuke's TCL, a file knob's ``[v2]`` (a folder ``Shot [v2]``) is an unknown command and ``$1`` an unset
  variable, both errors, ``$env(NAME)`` the environment's, and a backslash before one of ``[ ] $ { }`` or itself the character (``_eval_tcl``);
  a ``File_Knob``'s ``evaluate()`` is the file of the current frame (each ``#`` run and ``%0Nd``
  filled in, a folder's name too), as Nuke's; ``value()`` keeps the pattern;
  an expression reads a knob as Nuke's ``getValue`` does (a menu's index, 0/1); numbers only
  are animated, and only after ``setAnimated``; what Nuke's docs leave open (keys on strings,
  curve letters, time nodes off their documented cases) raises ``NotImplementedError``;
- callbacks by node class (``addOnCreate``, ``addKnobChanged``); knobChanged fires while a
  node's panel is open (``showControlPanel`` sends ``showPanel``) and, as in Nuke, not again
  for knobs set inside a knobChanged callback;
- ``scriptOpen`` / ``scriptSave`` read and write ``.nk`` files (stack syntax, gizmo nodes by
  class with their non-default knobs);
- filename filters (``addFilenameFilter``, a studio's path remapping): ``filenameFilter`` runs
  them, and a ``Read`` or ``Write`` opens its file through them, as in Nuke;
- start-up as Nuke does it: ``init.py`` of each ``NUKE_PATH`` folder (and of folders added
  with ``pluginAddPath``), ``menu.py`` too when ``GUI``.

- ``opHashes()`` as in Nuke: a hash of the node's knobs (not name or position) and of its inputs'
  hashes at the current frame (``nuke.frame()``); a ``Read``'s includes the file of that frame
  and its reload count, so a new plate version, a changed knob upstream or a reconnection
  changes it; stable across sessions (a saved script compares with a later one); in proxy mode
  (the Root's ``proxy``) every op's hash holds the proxy context too (``proxy_type`` and its
  ``proxy_scale`` or ``proxy_format``), as Nuke builds ops for it;
- images keep Nuke's windows and metadata: a ``Read`` gives the file's display window (format),
  data window (bounding box, overscan included) and metadata (the file's attributes as
  ``exr/<name>``, plus ``input/filename``, ``input/mtime``, ``input/ctime``, ``input/filesize``,
  ``input/frame``); a ``Write`` writes both windows and, per its ``metadata`` knob, Nuke's
  ``nuke/node_hash`` and ``nuke/version`` plus a ``capDate`` time stamp (default metadata), the
  input's ``exr/*`` (prefix removed, as Nuke writes them) and ``input/*`` (all metadata);
- render callbacks: ``execute`` runs ``beforeRender`` once and ``beforeFrameRender`` before each
  frame with ``nuke.frame()`` set to it (an exception stops the render with a ``RuntimeError``);
  ``updateUI`` runs when the test plays Nuke's idle loop (``_update_ui``); ``scriptClose`` runs
  ``onScriptClose`` and empties the script.

Test hooks are private (leading underscore): ``_reset``, ``_startup``, ``_messages``,
``_executions``, ``_progress_tasks``, ``_cancel_hook``, ``_main_queue``, ``_run_main_queue``,
``_update_ui``.
"""

import os
import re
import sys
import threading

import nkscript as _nk
import numpy as _np
import OpenImageIO as _oiio

# -- module constants used by the plugin ------------------------------------------------------
GUI = False
EXE_PATH = "/opt/Foundry/Nuke15.1v1/Nuke15.1"
NUKE_VERSION_MAJOR = 15
NUKE_VERSION_MINOR = 1
NUKE_VERSION_RELEASE = 1
NUKE_VERSION_STRING = "15.1v1"

# -- private state --------------------------------------------------------------------------
_lock = threading.RLock()
_CALLBACK_KINDS = ("onCreate", "knobChanged", "updateUI", "beforeRender", "beforeFrameRender", "afterFrameRender",
                   "afterRender", "onScriptClose")


def _reset():
    """Forget everything: a new, empty Nuke session (not started up)."""
    global _root, _context, _callbacks, _plugin_path, _inits_run, _messages, _executions
    global _progress_tasks, _cancel_hook, _main_queue, _layers, _menus, _this, _in_knob_changed, _frame
    global _filename_filters, _knob_defaults
    _knob_defaults = {}
    _root = Root()
    _context = [_root]
    _frame = 1
    _callbacks = dict((kind, []) for kind in _CALLBACK_KINDS)
    _plugin_path = []
    _filename_filters = []
    _inits_run = set()
    _messages = []
    _executions = []
    _progress_tasks = []
    _cancel_hook = None
    _main_queue = []
    _layers = {}
    _menus = {}
    _this = []
    _in_knob_changed = set()


def _startup(gui=None):
    """Run start-up as Nuke does: ``init.py`` of each ``NUKE_PATH`` folder, then ``menu.py``."""
    global GUI
    if gui is not None:
        GUI = bool(gui)
    folders = [os.path.abspath(p) for p in os.environ.get("NUKE_PATH", "").split(os.pathsep) if p]
    # The plugin path is NUKE_PATH in order (the first folder's plug-ins win), but "NUKE_PATH is
    # parsed in reverse order when loading init.py and menu.py": the last folder's init.py runs
    # first, the first folder's last (learn.foundry.com, "Defining the Nuke Plug-in Path").
    for folder in folders:
        _add_plugin_folder(folder, append=True, run_init=False)
    for folder in reversed(folders):
        _run_init(folder)
    if GUI:
        for folder in reversed(list(_plugin_path)):
            _run_file(os.path.join(folder, "menu.py"))


def _run_file(path):
    if os.path.isfile(path):
        namespace = {"__name__": "__main__", "__file__": path, "nuke": sys.modules[__name__]}
        with open(path) as handle:
            code = compile(handle.read(), path, "exec")
        exec(code, namespace)


def _add_plugin_folder(folder, append=False, run_init=True):
    folder = os.path.abspath(folder)
    if append:
        if folder not in _plugin_path:
            _plugin_path.append(folder)
    else:  # pluginAddPath: "If the path already exists in the list of plugin paths, it is moved to the start"
        if folder in _plugin_path:
            _plugin_path.remove(folder)
        _plugin_path.insert(0, folder)
    if folder not in sys.path:
        sys.path.append(folder) if append else sys.path.insert(0, folder)
    if run_init:
        _run_init(folder)


def _run_init(folder):
    init = os.path.join(folder, "init.py")
    if os.path.isfile(init) and init not in _inits_run:
        _inits_run.add(init)
        _run_file(init)


def _run_main_queue():
    """Run what other threads handed to ``executeInMainThread`` (the test plays the main loop)."""
    while _main_queue:
        call, args, kwargs = _main_queue.pop(0)
        call(*args, **kwargs)


# -- expressions and TCL ------------------------------------------------------------------------
class _FakeLimit(NotImplementedError):
    """The fake does not implement this (Nuke would); the test must not rely on it."""


def _lookup_knob(node, path):
    """``parent.x`` / ``Node.x`` / ``x`` seen from ``node``."""
    parts = path.split(".")
    if len(parts) == 1:
        target, knob = node, parts[0]
    elif len(parts) == 2:
        if parts[0] == "parent":
            target = node._group
            if target is None or target is _root:
                raise RuntimeError("%s: 'parent' used outside a group" % node.name())
        else:
            target = node._group.node(parts[0]) if node._group is not None else None
            if target is None:
                raise RuntimeError("%s: no node %s" % (node.name(), parts[0]))
        knob = parts[1]
    else:
        raise _FakeLimit("fake nuke: knob path %r" % path)
    found = target.knob(knob)
    if found is None:
        raise RuntimeError("%s: no knob %s on %s" % (node.name(), knob, target.name()))
    return found


#: The time an expression is evaluated at (``getValueAt``); ``None``: the current frame.
_eval_time = []  # type: list


def _eval_expression(node, expr):
    text = expr.strip()
    negate = text.startswith("!")
    if negate:
        text = text[1:].strip()
    if re.match(r"^-?\d+(\.\d+)?$", text):
        value = float(text)
    elif text == "frame":  # Nuke's frame variable: the time the knob is evaluated at
        value = float(_eval_time[-1] if _eval_time else _frame)
    elif re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$", text):
        knob = _lookup_knob(node, text)
        if not isinstance(knob, Array_Knob):  # a string in an expression: not faked
            raise _FakeLimit("fake nuke: expression %r reads %s knob %s" % (expr, knob.Class(), knob.name()))
        value = knob.getValue()  # as in Nuke, a number: a menu's index, 0/1 for a checkbox
    else:
        raise _FakeLimit("fake nuke: expression %r" % expr)
    if negate:
        return 0.0 if value else 1.0
    return float(value)


_TCL_VALUE = re.compile(r"\[value ([A-Za-z_][A-Za-z0-9_.]*)\]")
#: Commands of Nuke's TCL (https://www.nukepedia.com/reference/Tcl/group__tcl__builtin.html and
#: group__tcl__native.html) a file path may hold that the fake does not run (it raises _FakeLimit);
#: any other word in brackets is, as in Nuke, an unknown command: an error.
_TCL_COMMANDS = frozenset((
    "value", "knob", "numvalue", "exists", "expression", "expr", "file", "getenv", "python", "string", "lindex",
    "lrange", "split", "join", "format", "regsub", "regexp", "date", "clock", "if", "return", "set", "topnode",
    "in", "frame", "basename", "filename", "views", "view", "env", "glob", "llength", "concat", "list", "subst",
    "eval", "exec", "puts", "catch", "error", "info", "incr", "proc", "global", "upvar", "array", "lsearch",
))
#: One TCL substitution in a knob's text, as Tcl's parser takes them (https://www.tcl.tk/man/tcl/TclCmd/Tcl.htm,
#: rules 5 to 8): a backslash and the character after it; a command in brackets; a variable $name,
#: ${name} or $name(index) (an array element such as $env(SHOW)).
_TCL_SUBSTITUTION = re.compile(r"\\(.)|(\[[^\]]*\]?)|\$(?:\{([^}]*)\}|([A-Za-z0-9_]+)(\([^)]*\))?)", re.S)


def _eval_tcl(node, text):
    """The text as Nuke's TCL substitution gives it (``File_Knob.evaluate``): ``[value x]`` is the knob's value
    as it is (a command's result is not substituted again); another command Nuke has raises :class:`_FakeLimit`
    and an unknown one (``[v2]`` of a folder ``Shot [v2]``) fails as in Nuke; ``$env(NAME)`` is the
    environment variable, another variable (``$1`` of ``proj$1``) fails as Tcl's ``can't read``; a backslash
    escapes ``[ ] $ { } \\``. Other backslashes are kept (how Nuke takes ``C:\\shows`` is not modelled)."""
    def substitute(match):
        escaped, command, braced, name, index = match.groups()
        if escaped is not None:
            return escaped if escaped in "[]${}\\" else match.group(0)
        if command is not None:
            value = _TCL_VALUE.fullmatch(command)
            if value:
                return str(_lookup_knob(node, value.group(1)).value())
            word = command[1:].strip().split(" ")[0].rstrip("]")
            if word in _TCL_COMMANDS or not command.endswith("]"):
                raise _FakeLimit("fake nuke: TCL %r in %r" % (command, text))
            raise RuntimeError('%s: unknown command "%s" in %r' % (node.name() if node is not None else "", word, text))
        variable = braced if braced is not None else name
        if name == "env" and index:
            key = index[1:-1]
            if key in os.environ:
                return os.environ[key]
            raise RuntimeError('can\'t read "env(%s)": no such variable (in %r)' % (key, text))
        if braced is None and index:
            raise _FakeLimit("fake nuke: TCL array %r in %r" % (match.group(0), text))
        raise RuntimeError('can\'t read "%s": no such variable (in %r)' % (variable, text))

    return _TCL_SUBSTITUTION.sub(substitute, text)


# -- knobs ---------------------------------------------------------------------------------------
class Knob(object):
    """Base of every knob: name, label, tooltip, flags, enabled/visible."""

    _default = None

    def __init__(self, name, label=None, value=None):
        self._name = name
        self._label = name if label is None else label
        self._value = self._default if value is None else value
        self._node = None
        self._flags = set()
        self._enabled = True
        self._visible = True
        self._tooltip = ""

    def Class(self):
        return type(self).__name__

    def name(self):
        return self._name

    def label(self):
        return self._label

    def setLabel(self, label):
        self._label = label

    def node(self):
        return self._node

    def tooltip(self):
        return self._tooltip

    def setTooltip(self, tooltip):
        self._tooltip = tooltip

    def enabled(self):
        return self._enabled

    def setEnabled(self, enabled):
        self._enabled = bool(enabled)

    def visible(self):
        return self._visible

    def setVisible(self, visible):
        self._visible = bool(visible)

    def setFlag(self, flag):
        self._flags.add(flag)

    def clearFlag(self, flag):
        self._flags.discard(flag)

    def getFlag(self, flag):
        return flag in self._flags

    def value(self):
        return self._value

    def getValue(self):
        return self.value()

    def setValue(self, value):
        self._value = self._check(value)
        self._changed()
        return True

    def hasExpression(self, index=-1):
        return False

    def isAnimated(self, channel=-1):
        return False

    # Nuke offers keys and expressions on every knob (nuke.Knob), but its docs do not say what a
    # keyed string, menu-less or button knob gives: the fake animates numbers (Array_Knob) only.
    def setAnimated(self, channel=-1):
        raise _FakeLimit("fake nuke: animating %s knob %s" % (self.Class(), self._name))

    def setValueAt(self, val, time, index=-1, view=None):
        raise _FakeLimit("fake nuke: a key on %s knob %s" % (self.Class(), self._name))

    def setExpression(self, expression, index=-1, view=None):
        raise _FakeLimit("fake nuke: an expression on %s knob %s" % (self.Class(), self._name))

    def getValueAt(self, frame, index=-1, view=None):
        raise _FakeLimit("fake nuke: getValueAt of %s knob %s" % (self.Class(), self._name))

    def _check(self, value):
        return value

    def _changed(self):
        if self._node is not None:
            self._node._knob_changed(self)

    def toScript(self):
        return _nk.quote(self._value if self._value is not None else "")

    def fromScript(self, text):
        self._value = self._check(text)


class String_Knob(Knob):
    _default = ""

    def _check(self, value):
        if not isinstance(value, str):
            raise TypeError("%s: string expected, got %r" % (self._name, value))
        return value


class EvalString_Knob(String_Knob):
    def evaluate(self):
        return _eval_tcl(self._node, self._value)


class File_Knob(EvalString_Knob):
    def evaluate(self):
        # As in Nuke: the TCL evaluated and the current frame's number put in for each '#' run
        # (as many digits) and printf token (%d, %04d), wherever they are in the path ("Evaluate
        # the string, performing substitutions": https://learn.foundry.com/nuke/developers/130/
        # pythondevguide/_autosummary/nuke.File_Knob.html; pipelines rely on it, e.g.
        # os.path.isfile(node['file'].evaluate())). The sequence's pattern is value().
        return _frame_file(self._pattern(), _eval_time[-1] if _eval_time else _frame)

    def _pattern(self):
        """The TCL evaluated, frame tokens kept (what the fake's Read and Write read frames of)."""
        return EvalString_Knob.evaluate(self)


class Script_Knob(String_Knob):
    """A button; Nuke's own (e.g. Read's ``reload``) run a built-in action."""

    def __init__(self, name, label=None, value=None, action=None):
        String_Knob.__init__(self, name, label, value)
        self._action = action

    def command(self):
        return self._value

    def setCommand(self, command):
        self._value = self._check(command)

    def execute(self):
        if self._action is not None:
            return self._action()
        raise _FakeLimit("fake nuke: TCL script knob %s" % self._name)


class PyScript_Knob(Script_Knob):
    def execute(self):
        node = self._node
        namespace = {"nuke": sys.modules[__name__], "__name__": "__knob__"}
        _this.append((node, self))
        try:
            if node is not None and isinstance(node, Group):
                with node:
                    exec(compile(self._value, "%s.%s" % (node.name(), self._name), "exec"), namespace)
            else:
                exec(compile(self._value, self._name, "exec"), namespace)
        finally:
            _this.pop()


class Text_Knob(Knob):
    _default = ""

    def setValue(self, value):
        self._value = str(value)
        self._changed()


class Tab_Knob(Knob):
    def setValue(self, value):
        raise _FakeLimit("fake nuke: Tab_Knob.setValue")


class Array_Knob(Knob):
    """Numbers, possibly driven by an expression ``{{...}}`` or animated by keyframes.

    As in Nuke: ``value()`` is the value at the current frame (``nuke.frame()``), ``getValueAt``
    at any frame; ``isAnimated()`` holds for keyframes and for an expression; ``setValue`` of an
    animated knob sets a key at the current frame; ``toScript`` writes keys as
    ``{{curve x1 4 x10 20}}``. Between keys the fake interpolates linearly (Nuke's default curve
    is smooth: a test must rely on values at the keys only)."""

    def __init__(self, name, label=None, value=None):
        Knob.__init__(self, name, label, value)
        self._expression = None
        self._keys = {}  # {frame: value}; empty: not keyframed

    def setExpression(self, expression, channel=-1, view=None):
        self._expression = expression
        self._keys = {}
        self._changed()
        return True

    def hasExpression(self, index=-1):
        return self._expression is not None

    def isAnimated(self, channel=-1):
        return self._expression is not None or bool(self._keys)

    def setAnimated(self, channel=-1):
        if not self._keys:
            self._keys = {float(_frame): float(self._value)}
        return True

    def clearAnimated(self, channel=-1):
        self._keys = {}
        self._expression = None
        self._changed()
        return True

    def setValueAt(self, val, time, index=-1, view=None):
        if not self._keys:  # keys first (setAnimated): what Nuke does to a static knob is not documented
            raise _FakeLimit("fake nuke: setValueAt on %s, which is not animated (call setAnimated first)"
                             % self._name)
        self._keys[float(time)] = float(self._check(val))
        self._changed()
        return True

    def _raw_at(self, time):
        if self._expression is not None:
            _eval_time.append(time)
            try:
                return _eval_expression(self._node, self._expression)
            finally:
                _eval_time.pop()
        if self._keys:
            times = sorted(self._keys)
            if time <= times[0]:
                return self._keys[times[0]]
            if time >= times[-1]:
                return self._keys[times[-1]]
            after = next(t for t in times if t >= time)
            before = max(t for t in times if t <= time)
            if after == before:
                return self._keys[after]
            share = (time - before) / (after - before)
            return self._keys[before] + share * (self._keys[after] - self._keys[before])
        return self._value

    def _raw(self):
        return self._raw_at(_eval_time[-1] if _eval_time else _frame)

    def getValueAt(self, frame, index=-1, view=None):
        return float(self._raw_at(float(frame)))

    def getValue(self, index=0):
        # As in Nuke: a number at the current frame whatever ``value()`` gives (a menu's index,
        # 0/1 for a checkbox; https://learn.foundry.com/nuke/developers/63/pythonreference/nuke.Knob-class.html)
        return float(self._raw())

    def value(self):
        return self._raw()

    def setValue(self, value):
        if self._keys:  # as in Nuke: a key at the current frame
            self._keys[float(_frame)] = float(self._check(value))
            self._changed()
            return True
        self._expression = None
        return Knob.setValue(self, value)

    def toScript(self):
        if self._expression is not None:
            return "{{%s}}" % self._expression
        if self._keys:
            return "{{curve %s}}" % " ".join("x%g %g" % (t, self._keys[t]) for t in sorted(self._keys))
        return _nk.quote(self._script_value())

    def _script_value(self):
        return self._value

    def fromScript(self, text):
        match = re.match(r"^\{\{(.*)\}\}$", text.strip(), re.S)
        self._keys = {}
        if match and match.group(1).strip().startswith("curve "):
            self._expression = None
            time = 1.0
            for token in match.group(1).split()[1:]:
                if token.startswith("x"):
                    time = float(token[1:])
                elif re.match(r"^-?\d+(\.\d*)?(e-?\d+)?$", token):
                    self._keys[time] = float(token)
                    time += 1
                else:  # Nuke's interpolation letters (K, L, C, ...) and slopes (s, u, v): not faked
                    raise _FakeLimit("fake nuke: %s: %r in %r" % (self._name, token, text))
        elif match:
            self._expression = match.group(1).strip()
        else:
            self._expression = None
            self._value = self._parse(text.strip())

    def _parse(self, text):
        return float(text)


class Int_Knob(Array_Knob):
    _default = 0

    def value(self):
        return int(self._raw())

    def _check(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError("%s: int expected, got %r" % (self._name, value))
        return int(value)

    def _parse(self, text):
        return int(float(text))


class Double_Knob(Array_Knob):
    _default = 0.0

    def value(self):
        return float(self._raw())

    def _check(self, value):
        if not isinstance(value, (int, float)):
            raise TypeError("%s: number expected, got %r" % (self._name, value))
        return float(value)


class Boolean_Knob(Array_Knob):
    _default = False

    def value(self):
        return bool(self._raw())

    def _check(self, value):
        if not isinstance(value, (bool, int)):
            raise TypeError("%s: bool expected, got %r" % (self._name, value))
        return bool(value)

    def _parse(self, text):
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValueError("%s: not a boolean: %r" % (self._name, text))

    def _script_value(self):
        return "true" if self._value else "false"


class Disable_Knob(Boolean_Knob):
    pass


class ColorChip_Knob(Array_Knob):
    _default = 0

    def _parse(self, text):
        return int(text, 0)

    def _script_value(self):
        return "0x%08x" % self._value


class Enumeration_Knob(Array_Knob):
    """A menu: ``value()`` is the item's text; a value not in the menu is refused."""

    def __init__(self, name, label=None, values=None):
        Array_Knob.__init__(self, name, label, 0)
        self._values = list(values or [])

    def values(self):
        return list(self._values)

    def setValues(self, values):
        current = self.value() if self._values else None
        self._values = [str(v) for v in values]
        self._value = self._values.index(current) if current in self._values else 0

    def numValues(self):
        return len(self._values)

    def enumName(self, n):
        return self._values[n]

    def value(self):
        index = int(self._raw())
        if not self._values:
            return ""
        if not 0 <= index < len(self._values):  # keys or an expression outside the menu: Nuke's docs are silent
            raise _FakeLimit("fake nuke: %s is %d, outside its menu %s" % (self._name, index, self._values))
        return self._values[index]

    def setValue(self, value):
        if isinstance(value, str):
            if value not in self._values:
                raise ValueError("%s: %r is not one of %s" % (self._name, value, self._values))
            index = self._values.index(value)
        elif isinstance(value, int) and 0 <= value < len(self._values):
            index = value
        else:
            raise ValueError("%s: invalid value %r" % (self._name, value))
        if self._keys:  # as in Nuke: a key at the current frame
            self._keys[float(_frame)] = float(index)
            self._changed()
            return True
        self._expression = None
        self._value = index
        self._changed()
        return True

    def _parse(self, text):
        if text in self._values:
            return self._values.index(text)
        raise ValueError("%s: %r is not one of %s" % (self._name, text, self._values))

    def _script_value(self):
        return self._values[self._value] if self._values else ""


class Channel_Knob(Knob):
    """One channel (Copy's ``from0``, a user knob of type 11): ``value()`` its name as Nuke saves it,
    ``layer.channel`` (``rgba.alpha``, ``mask.a``), or ``none`` (no channel: Nuke's menu entry and
    the default of a user knob). Any layer name is taken, as Nuke makes a layer a script names."""

    _default = "none"

    def _check(self, value):
        if value != "none" and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z0-9_]+$", str(value)):
            raise ValueError("%s: not a channel name (layer.channel or none): %r" % (self._name, value))
        return value


class ChannelMask_Knob(Channel_Knob):
    """The channels a Write writes: ``rgb``, ``rgba``, ``alpha``, ``all``."""

    _default = "rgb"
    _CHOICES = ("rgb", "rgba", "alpha", "all", "none")

    def _check(self, value):
        if value not in self._CHOICES:
            raise ValueError("%s: fake nuke knows channel sets %s, not %r" % (self._name, self._CHOICES, value))
        return value


class Layer(object):
    """``nuke.Layer(name, channels)`` makes a layer known (``fg`` with ``fg.red`` ...)."""

    def __init__(self, name, channels):
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise ValueError("bad layer name %r" % name)
        channels = list(channels)
        for channel in channels:
            if not channel.startswith(name + "."):
                raise ValueError("channel %r does not belong to layer %r" % (channel, name))
        existing = _layers.get(name)
        if existing is not None and existing != channels:
            raise ValueError("layer %s exists with channels %s" % (name, existing))
        _layers[name] = channels
        self._name = name

    def name(self):
        return self._name

    def channels(self):
        return list(_layers[self._name])

    def visible(self):
        return True


# -- images ----------------------------------------------------------------------------------------
_EXR_TO_NUKE = {"R": "red", "G": "green", "B": "blue", "A": "alpha"}
_NUKE_TO_EXR = {"red": "R", "green": "G", "blue": "B", "alpha": "A"}
_RGBA = ["rgba.red", "rgba.green", "rgba.blue", "rgba.alpha"]


def _nuke_channel(exr_name):
    if "." not in exr_name:
        return "rgba." + _EXR_TO_NUKE[exr_name] if exr_name in _EXR_TO_NUKE else "other." + exr_name
    layer, channel = exr_name.rsplit(".", 1)
    return "%s.%s" % (layer, _EXR_TO_NUKE.get(channel, channel))


def _exr_channel(nuke_name):
    layer, channel = nuke_name.split(".", 1)
    if layer == "rgba":
        return _NUKE_TO_EXR[channel]
    return nuke_name


def _frame_file(pattern, frame):
    """``pattern`` at ``frame``: each run of '#' is the frame padded to as many digits, each %d / %0Nd printf's."""
    frame = int(frame)
    pattern = re.sub(r"%(0\d+)?d", lambda m: m.group(0) % frame, pattern)
    return re.sub(r"#+", lambda m: "%0*d" % (len(m.group(0)), frame), pattern)


class _Image(object):
    """Pixels of the data window (bounding box) ``bbox`` = (x, y, w, h) inside the display window
    (format) ``format`` = (x, y, w, h), OpenEXR/OIIO coordinates; ``metadata`` as Nuke names it."""

    def __init__(self, pixels, channels, bbox=None, format=None, metadata=None):
        self.pixels = pixels
        self.channels = list(channels)
        h, w = pixels.shape[:2]
        self.bbox = tuple(bbox) if bbox is not None else (0, 0, w, h)
        self.format = tuple(format) if format is not None else self.bbox
        self.metadata = dict(metadata or {})

    def like(self, pixels):
        return _Image(pixels, self.channels, self.bbox, self.format, self.metadata)


def _stable_hash(text):
    """A 63-bit int that is the same in every session (Python's hash() of a str is not)."""
    import hashlib

    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:15], 16)


def _proxy_hash_parts():
    """What Nuke appends to every op's hash in proxy mode: the proxy context the op is built for
    (NDK: "Every Op, after it has been constructed for a particular OutputContext (frame/view/proxy
    setting) has a hash", its inputs' "generated for the same frame/view/proxy setting";
    ``ProxyContext::appendProxy(Hash&)``), so that an op's hash differs in proxy mode from full
    resolution, and between proxy scales. Nothing at full resolution (a hash saved before the knobs
    existed stays)."""
    if not _root["proxy"].value():
        return []
    kind = _root["proxy_type"].value()
    size = _root["proxy_scale"].value() if kind == "scale" else _root["proxy_format"].value()
    return ["proxy=%s:%s" % (kind, size)]


#: Knobs that do not change an op's hash (as in Nuke: name, position, selection, looks).
_UNHASHED = ("name", "xpos", "ypos", "selected", "label", "tile_color", "help")


def _read_image(path, who):
    # As Nuke's Read (premultiplied knob off): a PNG's straight colour as stored, not premultiplied.
    config = _oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)
    image = _oiio.ImageInput.open(path, config)
    if image is None:
        raise RuntimeError("%s: cannot read %s: %s" % (who, path, _oiio.geterror()))
    try:
        spec = image.spec()
        pixels = image.read_image(0, 0, 0, spec.nchannels, _oiio.FLOAT)
        if pixels is None:
            raise RuntimeError("%s: cannot read %s: %s" % (who, path, image.geterror()))
        pixels = _np.asarray(pixels, dtype=_np.float32).reshape(spec.height, spec.width, spec.nchannels)
        metadata = {}
        for attribute in spec.extra_attribs:
            if attribute.name not in ("oiio:ColorSpace", "oiio:subimages", "compression"):
                metadata["exr/" + attribute.name] = attribute.value
        info = os.stat(path)
        metadata.update({"input/filename": path, "input/mtime": info.st_mtime, "input/ctime": info.st_ctime,
                         "input/filesize": info.st_size, "input/width": spec.full_width,
                         "input/height": spec.full_height})
        return _Image(pixels, [_nuke_channel(c) for c in spec.channelnames],
                      bbox=(spec.x, spec.y, spec.width, spec.height),
                      format=(spec.full_x, spec.full_y, spec.full_width, spec.full_height), metadata=metadata)
    finally:
        image.close()


# -- nodes ---------------------------------------------------------------------------------------
def _handle(node):
    """A new Python object for ``node`` (sharing its state), as Nuke hands out: ``==`` holds between
    two handles of one node, ``is`` and ``id()`` do not."""
    if node is None or isinstance(node, Root):
        return node
    handle = object.__new__(type(node))
    handle.__dict__ = node.__dict__
    return handle


class Node(object):
    """A node: knobs, inputs, a group it lives in."""

    _max_inputs = 1

    def __init__(self, cls):
        self._class = cls
        self._knobs = {}
        self._knob_order = []
        self._inputs = []
        self._group = None
        self._panel_open = False
        self._defaults = {}
        for knob in (String_Knob("name"), Disable_Knob("disable"), Int_Knob("xpos"), Int_Knob("ypos"),
                     String_Knob("label"), Boolean_Knob("selected"), ColorChip_Knob("tile_color")):
            self.addKnob(knob)

    # identity
    def __eq__(self, other):
        # As in Nuke, each call that hands out a node (input, toNode, allNodes, ...) makes a new
        # Python object for it; two of them are equal when they stand for the same node.
        return isinstance(other, Node) and other.__dict__ is self.__dict__

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return id(self.__dict__)

    def Class(self):
        return self._class

    def name(self):
        return self._knobs["name"].value()

    def fullName(self):
        names = [self.name()]
        group = self._group
        while group is not None and group is not _root:
            names.append(group.name())
            group = group._group
        return ".".join(reversed(names))

    def setName(self, name, uncollide=True, updateExpressions=False):
        group = self._group
        if group is not None:
            other = group.node(name)
            if other is not None and other != self:
                if not uncollide:
                    raise ValueError("name %s is taken" % name)
                name = group._unique_name(re.sub(r"\d+$", "", name) or name)
        self._knobs["name"]._value = name

    def parent(self):
        return self._group

    # knobs
    def addKnob(self, knob):
        if knob._name in self._knobs:
            raise RuntimeError("%s: knob %s already exists" % (self._class, knob._name))
        knob._node = self
        self._knobs[knob._name] = knob
        self._knob_order.append(knob._name)

    def knob(self, name):
        return self._knobs.get(name)

    def knobs(self):
        return dict(self._knobs)

    def allKnobs(self):
        return [self._knobs[n] for n in self._knob_order]

    def __getitem__(self, name):
        try:
            return self._knobs[name]
        except KeyError:
            raise NameError("knob %s does not exist" % name) from None

    def _knob_changed(self, knob, name=None):
        if not self._panel_open or self in _in_knob_changed:
            return
        _fire_knob_changed(self, knob)

    # panel
    def showControlPanel(self, forceFloat=False):
        self._panel_open = True
        _fire_knob_changed(self, Knob("showPanel"))

    def hideControlPanel(self):
        self._panel_open = False

    def shown(self):
        return self._panel_open

    # inputs
    def maxInputs(self):
        return self._max_inputs

    def inputs(self):
        count = 0
        for i, node in enumerate(self._inputs):
            if node is not None:
                count = i + 1
        return count

    def input(self, index):
        return _handle(self._inputs[index]) if 0 <= index < len(self._inputs) else None

    def setInput(self, index, node):
        if not 0 <= index < self.maxInputs():
            return False
        while len(self._inputs) <= index:
            self._inputs.append(None)
        self._inputs[index] = node
        if self._panel_open and self not in _in_knob_changed:
            _fire_knob_changed(self, Knob("inputChange"))
        return True

    # images
    def _image(self, frame):
        upstream = self.input(0)
        if upstream is None:
            raise RuntimeError("%s: input 0 is not connected" % self.name())
        return upstream._image(frame)

    def channels(self):
        try:
            return list(self._image(self.firstFrame()).channels)
        except RuntimeError:
            return []

    def opHashes(self):
        """One hash per op; here one op per node, at the current frame (``nuke.frame()``)."""
        return [self._op_hash(_frame)]

    def _op_hash(self, frame):
        parts = [self._class]
        for name in sorted(self._knobs):
            knob = self._knobs[name]
            if name in _UNHASHED or (isinstance(knob, Script_Knob) and not isinstance(knob, PyScript_Knob)):
                continue
            if isinstance(knob, Array_Knob) and knob.isAnimated():  # Nuke hashes the value at the frame
                parts.append("%s@=%r" % (name, knob.getValueAt(frame)))
            else:
                parts.append("%s=%s" % (name, knob.toScript()))
        parts += ["%d:%s" % (i, n._op_hash(frame) if n is not None else "-") for i, n in enumerate(self._inputs)]
        parts += self._own_hash_parts(frame)
        parts += _proxy_hash_parts()
        return _stable_hash("|".join(parts))

    def _own_hash_parts(self, frame):
        return []

    def firstFrame(self):
        upstream = self.input(0)
        return upstream.firstFrame() if upstream is not None else int(_root["first_frame"].value())

    def lastFrame(self):
        upstream = self.input(0)
        return upstream.lastFrame() if upstream is not None else int(_root["last_frame"].value())

    def __repr__(self):
        return "<%s %s>" % (self._class, self.fullName())


class _Read(Node):
    _max_inputs = 0

    def __init__(self):
        Node.__init__(self, "Read")
        self._reloads = 0
        self._cache = {}
        for knob in (File_Knob("file"), Int_Knob("first", value=1), Int_Knob("last", value=1),
                     Int_Knob("origfirst", value=1), Int_Knob("origlast", value=1),
                     Enumeration_Knob("before", values=["hold", "loop", "bounce", "black"]),
                     Enumeration_Knob("after", values=["hold", "loop", "bounce", "black"]),
                     Enumeration_Knob("on_error", values=["error", "black", "checkerboard", "nearest frame"]),
                     Boolean_Knob("raw"), Boolean_Knob("auto_alpha"), Boolean_Knob("premultiplied"),
                     Script_Knob("reload", action=self._reload)):
            self.addKnob(knob)
        # A few entries of Nuke's colorspace menu: how the file's values become the working space's
        # (default: an EXR's are linear already); raw on takes them as they are.
        self.addKnob(Enumeration_Knob("colorspace", values=["default", "linear", "sRGB"]))

    def _reload(self):
        self._reloads += 1
        self._cache.clear()

    def firstFrame(self):
        return self["first"].value()

    def lastFrame(self):
        return self["last"].value()

    def _own_hash_parts(self, frame):
        first, last = self.firstFrame(), self.lastFrame()
        try:
            pattern = _view_file(self["file"]._pattern())
        except RuntimeError as exc:
            pattern = "error:%s" % exc
        return ["file@%d=%s" % (frame, _frame_file(pattern, min(max(frame, first), last))), "reload=%d" % self._reloads]

    def _image(self, frame):
        if self["disable"].value():
            return _Image(_np.zeros((1, 1, 4), _np.float32), _RGBA)
        first, last = self.firstFrame(), self.lastFrame()
        if frame < first or frame > last:
            mode = self["before" if frame < first else "after"].value()
            if mode == "black":
                image = self._image(first)
                return image.like(_np.zeros_like(image.pixels))
            if mode != "hold":
                raise _FakeLimit("fake nuke: Read before/after %s" % mode)
            frame = first if frame < first else last
        pattern = _node_filename(self, _view_file(self["file"]._pattern()))
        if not pattern:
            raise RuntimeError("%s: no file" % self.name())
        path = _frame_file(pattern, frame)
        if not os.path.isfile(path):
            path = self._missing_frame(pattern, frame, path)
            if path is None:  # on_error black: Nuke's black frame (the fake's is 1x1)
                return _Image(_np.zeros((1, 1, 4), _np.float32), _RGBA)
        stamp = (path, os.path.getmtime(path), self._reloads)
        if stamp not in self._cache:
            self._cache[stamp] = _read_image(path, self.name())
        image = self._cache[stamp]
        if self["auto_alpha"].value() and "rgba.alpha" not in image.channels:  # an opaque alpha added
            h, w = image.pixels.shape[:2]
            image = _Image(_np.concatenate([image.pixels, _np.ones((h, w, 1), _np.float32)], axis=2),
                           image.channels + ["rgba.alpha"], image.bbox, image.format, image.metadata)
        if self["colorspace"].value() != "sRGB" or self["raw"].value():
            return image
        pixels = image.pixels.copy()  # sRGB-encoded values to linear, colour channels only
        alpha = pixels[:, :, image.channels.index("rgba.alpha")] if "rgba.alpha" in image.channels else None
        # premultiplied: the colour is divided by the alpha for the conversion and multiplied again
        divide = self["premultiplied"].value() and alpha is not None
        for i, channel in enumerate(image.channels):
            if channel in _RGBA[:3]:
                v = _np.where(alpha > 0, pixels[:, :, i] / _np.where(alpha > 0, alpha, 1), pixels[:, :, i]) \
                    if divide else pixels[:, :, i]
                v = _np.where(v <= 0.04045, v / 12.92, ((_np.maximum(v, 0) + 0.055) / 1.055) ** 2.4)
                pixels[:, :, i] = _np.where(alpha > 0, v * alpha, pixels[:, :, i]) if divide else v
        return image.like(pixels)

    def _missing_frame(self, pattern, frame, path):
        """Nuke's Read's ``on_error`` (*missing frames*) for a frame whose file is missing: ``error``
        fails, ``black`` gives black (None), ``nearest frame`` the nearest frame's file of the
        range that exists (else it fails)."""
        mode = self["on_error"].value()
        if mode == "black":
            return None
        if mode == "nearest frame":
            first, last = self.firstFrame(), self.lastFrame()
            for other in sorted(range(first, last + 1), key=lambda f: (abs(f - frame), f)):
                if os.path.isfile(_frame_file(pattern, other)):
                    return _frame_file(pattern, other)
        elif mode == "checkerboard":
            raise _FakeLimit("fake nuke: Read on_error checkerboard")
        raise RuntimeError("%s: Read error: %s: No such file or directory" % (self.name(), path))


#: OpenEXR's name (OpenImageIO's ``compression``) of each entry of the Write's compression menu.
_EXR_COMPRESSION = {"none": "none", "Zip (1 scanline)": "zips", "Zip (16 scanlines)": "zip",
                    "PIZ Wavelet (32 scanlines)": "piz", "RLE": "rle", "B44": "b44", "B44A": "b44a", "DWAA": "dwaa",
                    "DWAB": "dwab"}


class _Write(Node):
    def __init__(self):
        Node.__init__(self, "Write")
        for knob in (File_Knob("file"),
                     Enumeration_Knob("file_type", values=[" ", "exr", "png", "tiff", "jpeg", "dpx"]),
                     ChannelMask_Knob("channels"),
                     Enumeration_Knob("datatype", values=["16 bit half", "32 bit float"]),
                     Enumeration_Knob("compression", values=["none", "Zip (1 scanline)", "Zip (16 scanlines)",
                                                              "PIZ Wavelet (32 scanlines)", "RLE", "B44", "B44A",
                                                              "DWAA", "DWAB"]),
                     Enumeration_Knob("metadata", values=["no metadata", "default metadata",
                                                           "default metadata and exr/*",
                                                           "all metadata except input/*", "all metadata"]),
                     Boolean_Knob("raw"), Boolean_Knob("create_directories"), Boolean_Knob("use_limit"),
                     Int_Knob("first", value=1), Int_Knob("last", value=1), Boolean_Knob("autocrop"),
                     # the Python tab's per-node render callbacks (Python code Nuke runs, nuke.thisNode() the Write)
                     String_Knob("beforeRender"), String_Knob("beforeFrameRender"),
                     String_Knob("afterFrameRender"), String_Knob("afterRender")):
            self.addKnob(knob)
        self["compression"].fromScript("Zip (1 scanline)")
        self["metadata"].fromScript("default metadata")

    def _knob_changed(self, knob, name=None):
        # As in Nuke: the file type's own knob defaults (knobDefault("Write.exr.compression", ...),
        # a studio's menu.py) are applied when the file type is chosen.
        if knob is self._knobs["file_type"]:
            prefix = "Write.%s." % knob.value()
            for key, value in sorted(_knob_defaults.items()):
                if key.startswith(prefix) and key[len(prefix):] in self._knobs:
                    self[key[len(prefix):]].fromScript(value)
        Node._knob_changed(self, knob, name)

    def _write_frame(self, frame):
        if self["file_type"].value() != "exr":
            raise _FakeLimit("fake nuke: Write writes exr only, not %r" % self["file_type"].value())
        image = self._image(frame)
        selection = self["channels"].value()
        if selection == "rgb":
            wanted = _RGBA[:3]
        elif selection == "rgba":
            wanted = _RGBA
        elif selection == "alpha":
            wanted = _RGBA[3:]
        elif selection == "all":
            wanted = image.channels
        else:
            raise RuntimeError("%s: no channels to write" % self.name())
        if self["autocrop"].value():  # the data window shrunk to the pixels not zero in a channel written
            image = _autocropped(image, [c for c in wanted if c in image.channels])
        h, w = image.pixels.shape[:2]
        planes = []
        for channel in wanted:  # Nuke writes a missing channel as black
            if channel in image.channels:
                planes.append(image.pixels[:, :, image.channels.index(channel)])
            else:
                planes.append(_np.zeros((h, w), _np.float32))
        pixels = _np.ascontiguousarray(_np.stack(planes, axis=2), dtype=_np.float32)
        upstream_hash = self.input(0)._op_hash(frame) if self.input(0) is not None else 0
        path = _frame_file(_node_filename(self, _view_file(self["file"]._pattern())), frame)
        folder = os.path.dirname(path)
        if folder and not os.path.isdir(folder):
            if not self["create_directories"].value():
                raise RuntimeError("%s: Can't write %s: No such file or directory" % (self.name(), path))
            os.makedirs(folder)
        fmt = _oiio.HALF if self["datatype"].value() == "16 bit half" else _oiio.FLOAT
        spec = _oiio.ImageSpec(w, h, len(wanted), fmt)
        spec.channelnames = tuple(_exr_channel(c) for c in wanted)
        spec.x, spec.y = image.bbox[0], image.bbox[1]
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = image.format
        self._write_metadata(spec, image, upstream_hash)
        spec.attribute("compression", _EXR_COMPRESSION[self["compression"].value()])
        out = _oiio.ImageOutput.create(path)
        if out is None or not out.open(path, spec):
            raise RuntimeError("%s: cannot write %s: %s" % (self.name(), path, _oiio.geterror()))
        try:
            if not out.write_image(pixels):
                raise RuntimeError("%s: cannot write %s: %s" % (self.name(), path, out.geterror()))
        finally:
            out.close()
        _executions.append((self.name(), frame, path))

    def _write_metadata(self, spec, image, upstream_hash):
        """What Nuke's EXR writer puts in the header for each ``metadata`` choice."""
        import time as _time

        choice = self["metadata"].value()
        if choice == "no metadata":
            return
        spec.attribute("nuke/node_hash", "%x" % upstream_hash)
        spec.attribute("nuke/version", NUKE_VERSION_STRING)
        # EXR's capDate (OIIO calls it DateTime; without it OIIO stamps the current time anyway)
        spec.attribute("DateTime", _time.strftime("%Y:%m:%d %H:%M:%S"))
        if choice == "default metadata":
            return
        for key, value in sorted(image.metadata.items()):
            if key.startswith("input/"):
                if choice != "all metadata":
                    continue
                name = key
            elif key.startswith("exr/"):
                name = key[len("exr/"):]
            else:
                if choice == "default metadata and exr/*":
                    continue
                name = key
            if name in ("nuke/node_hash", "nuke/version", "DateTime", "capDate"):
                continue
            if isinstance(value, float):
                spec.attribute(name, _oiio.TypeDesc("float"), value)
            elif isinstance(value, (int, str)):
                spec.attribute(name, value)


def _autocropped(image, channels):
    """``image`` with its data window shrunk to the pixels where one of ``channels`` is not zero
    (the EXR Write's *autocrop*; an image all zero keeps one pixel)."""
    planes = [image.pixels[:, :, image.channels.index(c)] for c in channels]
    used = _np.any(_np.stack(planes, axis=2) != 0, axis=2) if planes else _np.zeros(image.pixels.shape[:2], bool)
    rows, cols = _np.nonzero(_np.any(used, axis=1))[0], _np.nonzero(_np.any(used, axis=0))[0]
    if not len(rows):
        rows = cols = _np.array([0])
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    x, y = image.bbox[0], image.bbox[1]
    return _Image(image.pixels[top:bottom, left:right].copy(), image.channels,
                  (x + left, y + top, right - left, bottom - top), image.format, image.metadata)


class _Grade(Node):
    """``white`` multiplies R, G and B (enough of Nuke's Grade for an upstream change)."""

    def __init__(self):
        Node.__init__(self, "Grade")
        self.addKnob(Double_Knob("white", value=1.0))

    def _image(self, frame):
        image = Node._image(self, frame)
        pixels = image.pixels.copy()
        for i, channel in enumerate(image.channels):
            if channel in ("rgba.red", "rgba.green", "rgba.blue"):
                pixels[:, :, i] *= self["white"].getValueAt(frame)  # at the frame pulled (a TimeOffset)
        return image.like(pixels)


class _Copy(Node):
    """Nuke's Copy: input 0 (B) with channel ``to0`` replaced by (or given) channel ``from0`` of
    input 1 (A); a channel A lacks is black, as Nuke gives it. B's windows and metadata; A is read
    at B's size (the fake does not move data windows about)."""

    _max_inputs = 2

    def __init__(self):
        Node.__init__(self, "Copy")
        self.addKnob(Channel_Knob("from0", value="rgba.alpha"))
        self.addKnob(Channel_Knob("to0", value="rgba.alpha"))

    def _image(self, frame):
        b, a = self.input(0), self.input(1)
        if b is None or a is None:
            raise RuntimeError("%s: input %s is not connected" % (self.name(), "B" if b is None else "A"))
        image, source = b._image(frame), a._image(frame)
        source_channel, target = self["from0"].value(), self["to0"].value()
        if target == "none":
            return image
        if source_channel in source.channels:
            if source.pixels.shape[:2] != image.pixels.shape[:2]:
                raise _FakeLimit("fake nuke: Copy of images of other sizes")
            plane = source.pixels[:, :, source.channels.index(source_channel)]
        else:
            plane = _np.zeros(image.pixels.shape[:2], _np.float32)
        if target in image.channels:
            pixels = image.pixels.copy()
            pixels[:, :, image.channels.index(target)] = plane
            return image.like(pixels)
        return _Image(_np.concatenate([image.pixels, plane[:, :, None]], axis=2), image.channels + [target],
                      image.bbox, image.format, image.metadata)


class _Input(Node):
    _max_inputs = 0

    def __init__(self):
        Node.__init__(self, "Input")
        self.addKnob(Int_Knob("number"))

    def _outer(self):
        group = self._group
        upstream = group.input(self["number"].value()) if group is not None and group is not _root else None
        if upstream is None:
            raise RuntimeError("%s: input %s of %s is not connected"
                               % (self.name(), self["number"].value(), group.name() if group else "?"))
        return upstream

    def _image(self, frame):
        return self._outer()._image(frame)

    def _own_hash_parts(self, frame):
        try:
            return ["outer=%s" % self._outer()._op_hash(frame)]
        except RuntimeError:
            return ["outer=-"]

    def firstFrame(self):
        return self._outer().firstFrame()

    def lastFrame(self):
        return self._outer().lastFrame()


class _Passthrough(Node):
    pass


class _Chooser(Node):
    """A node that shows one of its inputs (``_chosen``): its pixels and frame range are that input's."""

    def _chosen(self):
        raise NotImplementedError

    def _image(self, frame):
        return self._chosen()._image(frame)

    def firstFrame(self):
        return self._chosen().firstFrame()

    def lastFrame(self):
        return self._chosen().lastFrame()


class _Switch(_Chooser):
    """Nuke's Switch: shows input ``which`` (clamped to the inputs there are)."""

    _max_inputs = 8

    def __init__(self):
        Node.__init__(self, "Switch")
        self.addKnob(Int_Knob("which"))

    def _chosen(self):
        count = self.inputs()
        if count == 0:
            raise RuntimeError("%s: no input connected" % self.name())
        upstream = self.input(min(max(self["which"].value(), 0), count - 1))
        if upstream is None:
            raise RuntimeError("%s: input %d is not connected" % (self.name(), self["which"].value()))
        return upstream


class _TimeOffset(Node):
    """Nuke's TimeOffset: frame ``f`` is its input's frame ``f - time_offset`` (the offset at ``f``);
    its frame range is the input's, moved by the offset. Not faked (Nuke's docs are silent, so
    these raise): ``reverse_input``, a fractional offset, the frame range of an animated offset."""

    def __init__(self):
        Node.__init__(self, "TimeOffset")
        self.addKnob(Double_Knob("time_offset"))
        self.addKnob(Boolean_Knob("reverse_input"))

    def _shift(self, frame):
        """The offset at output ``frame`` (as Nuke evaluates a knob: at the frame pulled, which a
        time node downstream may make another than ``nuke.frame()``)."""
        if self["disable"].value():
            return 0
        if self["reverse_input"].value():
            raise _FakeLimit("fake nuke: TimeOffset reverse_input")
        offset = self["time_offset"].getValueAt(frame)
        if offset != int(offset):  # Nuke's docs say nothing of a fractional offset
            raise _FakeLimit("fake nuke: TimeOffset time_offset %r is not a whole number of frames" % offset)
        return int(offset)

    def _image(self, frame):
        return Node._image(self, frame - self._shift(frame))

    def _op_hash(self, frame):
        return Node._op_hash(self, frame - self._shift(frame))

    def _range_shift(self):
        if not self["disable"].value() and self["time_offset"].isAnimated():  # Nuke's docs are silent
            raise _FakeLimit("fake nuke: the frame range of a TimeOffset with an animated time_offset")
        return self._shift(_frame)

    def firstFrame(self):
        return Node.firstFrame(self) + self._range_shift()

    def lastFrame(self):
        return Node.lastFrame(self) + self._range_shift()


class _Viewer(Node):
    """Nuke's Viewer: shows one of up to 10 inputs (the fake renders none of them)."""

    _max_inputs = 10

    def __init__(self):
        Node.__init__(self, "Viewer")


class _Retimed(Node):
    """A node that reads its input at another frame: :meth:`_input_frame` says which."""

    def _input_frame(self, frame):
        return frame

    def _image(self, frame):
        return Node._image(self, frame if self["disable"].value() else self._input_frame(frame))

    def _op_hash(self, frame):
        return Node._op_hash(self, frame if self["disable"].value() else self._input_frame(frame))


class _FrameHold(_Retimed):
    """Nuke's FrameHold (knobs ``first_frame``, ``increment``): increment 0 holds ``first_frame``
    at every frame; ``n`` > 0 uses ``first_frame``, ``first_frame + n``, ... each for ``n`` frames
    (https://learn.foundry.com/nuke/content/reference_guide/time_nodes/framehold.html). Nuke's docs
    are silent on frames before ``first_frame`` with an increment, a negative increment and a
    fractional (animated) value: those raise."""

    def __init__(self):
        _Retimed.__init__(self, "FrameHold")
        self.addKnob(Int_Knob("first_frame"))
        self.addKnob(Int_Knob("increment"))

    def _input_frame(self, frame):
        first, step = self["first_frame"].getValueAt(frame), self["increment"].getValueAt(frame)
        if first != int(first) or step != int(step):
            raise _FakeLimit("fake nuke: FrameHold first_frame %r, increment %r at frame %s (not whole frames)"
                             % (first, step, frame))
        first, step = int(first), int(step)
        if step < 0:
            raise _FakeLimit("fake nuke: FrameHold increment %d (negative)" % step)
        if step == 0:
            return first
        if frame < first:
            raise _FakeLimit("fake nuke: FrameHold before first_frame with an increment")
        return first + (frame - first) // step * step


class _FrameRange(Node):
    """Nuke's FrameRange (knobs ``first_frame``, ``last_frame``): sets the frame range; frames in
    it pass through. Nuke's docs are silent on what it shows outside its range and on animated
    range knobs: those raise."""

    def __init__(self):
        Node.__init__(self, "FrameRange")
        self.addKnob(Int_Knob("first_frame"))
        self.addKnob(Int_Knob("last_frame"))

    def _range(self):
        for name in ("first_frame", "last_frame"):
            if self[name].isAnimated():
                raise _FakeLimit("fake nuke: FrameRange with an animated %s" % name)
        return int(self["first_frame"].value()), int(self["last_frame"].value())

    def _inside(self, frame):
        first, last = self._range()
        if not first <= frame <= last:
            raise _FakeLimit("fake nuke: FrameRange %s at frame %s, outside its range %d-%d"
                             % (self.name(), frame, first, last))
        return frame

    def _image(self, frame):
        return Node._image(self, frame if self["disable"].value() else self._inside(frame))

    def _op_hash(self, frame):
        return Node._op_hash(self, frame if self["disable"].value() else self._inside(frame))

    def firstFrame(self):
        return self._range()[0] if not self["disable"].value() else Node.firstFrame(self)

    def lastFrame(self):
        return self._range()[1] if not self["disable"].value() else Node.lastFrame(self)


class _Retime(_Retimed):
    """A stand-in for Nuke's Retime (knob ``speed``): frame ``f`` is its input's frame
    ``first + (f - first) * speed`` rounded, ``first`` its input's first frame (Nuke's output and
    input ranges, filtering and frame blending are not faked). Its switches of
    https://learn.foundry.com/nuke/content/reference_guide/time_nodes/retime.html are here, off as
    in Nuke, and raise when on; its other knobs (``input.first``, ``before``, ``filter`` ...) are not."""

    _SWITCHES = ("input.first_lock", "input.last_lock", "reverse", "output.first_lock", "output.last_lock")

    def __init__(self):
        _Retimed.__init__(self, "Retime")
        speed = Double_Knob("speed")
        speed.setValue(1.0)
        self.addKnob(speed)
        for name in self._SWITCHES:
            self.addKnob(Boolean_Knob(name))

    def _input_frame(self, frame):
        for name in self._SWITCHES:
            if self[name].value():
                raise _FakeLimit("fake nuke: Retime %s" % name)
        first = self.input(0).firstFrame() if self.input(0) is not None else frame
        return int(round(first + (frame - first) * self["speed"].value()))


class _OneView(Node):
    """Nuke's OneView: its input in the view its ``view`` knob names, in every view of the script
    (Nuke's knob is a ``OneView_Knob`` menu of the script's views; here a string holding the name).
    The input's op is built in that view, its hash too (a Read of ``plate.%V.####.exr`` hashes that
    view's file)."""

    def __init__(self):
        Node.__init__(self, "OneView")
        self.addKnob(String_Knob("view", value=views()[0]))

    def _in_view(self, work):
        view = self["view"].value()
        if view not in views():
            raise RuntimeError("%s: view %r is not one of the script's views (%s)"
                               % (self.name(), view, ", ".join(views())))
        _rendering_view.append(view)
        try:
            return work()
        finally:
            _rendering_view.pop()

    def _image(self, frame):
        return self._in_view(lambda: Node._image(self, frame))

    def _op_hash(self, frame):
        try:
            return self._in_view(lambda: Node._op_hash(self, frame))
        except RuntimeError:
            return Node._op_hash(self, frame)


class _JoinViews(_Chooser):
    """Nuke's JoinViews: one input per view of the script, in the order of the Root's ``views``
    knob; in each view it gives that view's input."""

    _max_inputs = 10

    def __init__(self):
        Node.__init__(self, "JoinViews")

    def _chosen(self):
        view = _rendering_view[-1] if _rendering_view else views()[0]
        index = views().index(view)
        upstream = self.input(index)
        if upstream is None:
            raise RuntimeError("%s: input %d (view %s) is not connected" % (self.name(), index, view))
        return upstream


_BUILTIN = {"Read": _Read, "Write": _Write, "Input": _Input, "Switch": _Switch, "Grade": _Grade, "Copy": _Copy,
            "TimeOffset": _TimeOffset, "FrameHold": _FrameHold, "FrameRange": _FrameRange, "Retime": _Retime,
            "Viewer": _Viewer, "OneView": _OneView, "JoinViews": _JoinViews,
            "Output": lambda: _Passthrough("Output"), "Dot": lambda: _Passthrough("Dot")}


class Group(Node):
    """A node holding nodes; ``with group:`` makes it the context of ``createNode``."""

    def __init__(self, cls="Group"):
        Node.__init__(self, cls)
        self._nodes = []
        self._max_inputs = 0

    def nodes(self):
        return [_handle(n) for n in self._nodes]

    def maxInputs(self):
        # As in Nuke, a group has one input for each Input node inside it.
        return len([n for n in self._nodes if n.Class() == "Input"])

    def node(self, name):
        head, _, rest = name.partition(".")
        for child in self._nodes:
            if child.name() == head:
                if rest:
                    return child.node(rest) if isinstance(child, Group) else None
                return _handle(child)
        return None

    def numNodes(self):
        return len(self._nodes)

    def begin(self):
        _context.append(self)
        return self

    def end(self):
        if len(_context) < 2 or _context[-1] != self:
            raise RuntimeError("%s.end() without begin()" % self.name())
        _context.pop()

    def __enter__(self):
        return self.begin()

    def __exit__(self, kind, value, traceback):
        self.end()
        return False

    def _unique_name(self, base):
        taken = set(n.name() for n in self._nodes)
        i = 1
        while "%s%d" % (base, i) in taken:
            i += 1
        return "%s%d" % (base, i)

    def _adopt(self, node, name=None):
        node._group = self
        self._nodes.append(node)
        wanted = name or self._unique_name(node.Class())
        if self.node(wanted) is not None and self.node(wanted) != node:
            wanted = self._unique_name(re.sub(r"\d+$", "", wanted) or wanted)
        node._knobs["name"]._value = wanted

    def _output(self):
        outputs = [n for n in self._nodes if n.Class() == "Output"]
        if not outputs:
            raise RuntimeError("%s has no Output node" % self.name())
        return outputs[0]

    def _image(self, frame):
        return self._output()._image(frame)

    def _own_hash_parts(self, frame):
        try:
            return ["output=%s" % self._output()._op_hash(frame)]
        except RuntimeError:
            return ["output=-"]

    def firstFrame(self):
        return self._output().firstFrame()

    def lastFrame(self):
        return self._output().lastFrame()


class Gizmo(Group):
    """A node built from ``<Class>.gizmo`` on the plugin path."""

    def __init__(self, cls, path):
        Group.__init__(self, cls)
        self._path = path

    def filename(self):
        return self._path


class Root(Group):
    def __init__(self):
        Group.__init__(self, "Root")
        self._knobs["name"]._value = ""
        # ``proxy``: Nuke's proxy mode switch (Ctrl/Cmd+P); the fake renders nothing in it (see execute)
        # ``proxy_type``, ``proxy_scale``, ``proxy_format``: Project Settings' proxy mode (scale, or a
        # format; Nuke's default scale 0.5), in the op hashes while proxy mode is on (_proxy_hash_parts).
        # Nuke's proxy_format is a Format_Knob: here its text as a .nk file writes it.
        # ``views``: the script's views (Project Settings > Views), as a .nk file writes them (see views())
        proxy_type = Enumeration_Knob("proxy_type", values=["scale", "format"])
        for knob in (Int_Knob("first_frame", value=1), Int_Knob("last_frame", value=100), Boolean_Knob("proxy"),
                     proxy_type, Double_Knob("proxy_scale", value=0.5), String_Knob("proxy_format"),
                     String_Knob("views", value='{{main ""}}')):
            self.addKnob(knob)

    def name(self):
        return "root"

    def fullName(self):
        return "root"

    def firstFrame(self):
        return self["first_frame"].value()

    def lastFrame(self):
        return self["last_frame"].value()


# -- building nodes ---------------------------------------------------------------------------------
_USER_KNOB_TYPES = {
    1: String_Knob, 2: File_Knob, 3: Int_Knob, 4: Enumeration_Knob, 6: Boolean_Knob, 7: Double_Knob,
    11: Channel_Knob,
    20: Tab_Knob, 22: PyScript_Knob, 26: Text_Knob,
}


def _make_user_knob(spec):
    cls = _USER_KNOB_TYPES.get(spec.code)
    if cls is None:
        raise _FakeLimit("fake nuke: addUserKnob type %d (%s)" % (spec.code, spec.name))
    label = spec.label if spec.label is not None else spec.name
    if cls is Enumeration_Knob:
        knob = Enumeration_Knob(spec.name, label, values=spec.menu or [])
    else:
        knob = cls(spec.name, label)
        if spec.value is not None:
            if cls in (Int_Knob, Double_Knob, Boolean_Knob):
                knob.fromScript(spec.value)
            else:
                knob._value = spec.value
    knob._tooltip = spec.tooltip
    knob._user_flags = set(spec.flags)
    if "INVISIBLE" in spec.flags or "HIDDEN" in spec.flags:
        knob._visible = False
    if "DISABLED" in spec.flags:
        knob._enabled = False
    return knob


def _apply_block(node, block):
    """Knob lines and user knobs of a parsed block, in order."""
    for item in block.items:
        if item[0] == "user":
            node.addKnob(_make_user_knob(item[1]))
            continue
        name, word = item[1], item[2]
        if name == "inputs" or name == "name":
            continue
        knob = node.knob(name)
        if knob is None:
            raise RuntimeError("%s (%s): no knob named %r (line %d)" % (block.get("name", "?"), node.Class(), name, word.line))
        text = "{%s}" % word.value if word.kind == "braced" and isinstance(knob, Array_Knob) else word.value
        knob.fromScript(text)


def _apply_class_defaults(node):
    """The studio's ``knobDefault("<Class>.<knob>", ...)``, as Nuke applies them to each node it makes,
    before a script's (or gizmo's) own knob lines: a knob a script leaves out takes the default."""
    prefix = node.Class() + "."
    for key, value in sorted(_knob_defaults.items()):
        name = key[len(prefix):]
        if key.startswith(prefix) and "." not in name and name in node._knobs:
            node[name].fromScript(value)


def _snapshot_defaults(node):
    node._defaults = dict((name, k.toScript()) for name, k in node._knobs.items())


def _find_gizmo(cls):
    for folder in _plugin_path:
        path = os.path.join(folder, cls + ".gizmo")
        if os.path.isfile(path):
            return path
    return None


def _build(cls):
    """A new, unplaced node of class ``cls`` (a built-in or a gizmo on the plugin path)."""
    if cls in _BUILTIN:
        node = _BUILTIN[cls]()
        _apply_class_defaults(node)
        _snapshot_defaults(node)
        return node
    if cls == "Group":
        node = Group()
        _snapshot_defaults(node)
        return node
    path = _find_gizmo(cls)
    if path is None:
        raise RuntimeError("%s: Unknown command" % cls)
    with open(path) as handle:
        ops = _nk.parse_script(handle.read())
    nodes = [op for op in ops if op[0] == "node"]
    if not nodes or nodes[0][1].cls != "Gizmo":
        raise RuntimeError("%s: not a gizmo (no 'Gizmo {' block)" % path)
    gizmo = Gizmo(cls, path)
    gizmo.addKnob(String_Knob("help"))
    header = nodes[0][1]
    _apply_block(gizmo, header)
    inner = ops[ops.index(nodes[0]) + 1:]
    _load_ops(inner, gizmo, callbacks=False, closing=True)
    gizmo._max_inputs = len([n for n in gizmo._nodes if n.Class() == "Input"])
    declared = header.get("inputs")
    if declared is not None and int(declared) != gizmo._max_inputs:
        raise RuntimeError("%s: 'inputs %s' but %d Input nodes" % (path, declared, gizmo._max_inputs))
    _snapshot_defaults(gizmo)
    return gizmo


def _load_ops(ops, group, callbacks=True, closing=False):
    """Create nodes in ``group`` from parsed script operations (stack semantics)."""
    stack = []
    variables = {}
    created = []
    i = 0
    while i < len(ops):
        op = ops[i]
        i += 1
        if op[0] == "version":
            continue
        if op[0] == "set":
            variables[op[1]] = stack[-1] if stack else None
        elif op[0] == "push":
            if op[1] is not None and op[1] not in variables:
                raise RuntimeError("push $%s: unknown variable" % op[1])
            stack.append(variables[op[1]] if op[1] is not None else None)
        elif op[0] == "end_group":
            if not closing:
                raise RuntimeError("end_group outside a group")
            break
        else:
            block = op[1]
            if block.cls == "Root":
                _apply_block(group, block)
                continue
            if block.cls in ("Group", "Gizmo"):
                raise _FakeLimit("fake nuke: nested Group blocks")
            node = _build(block.cls)
            group._adopt(node, block.get("name"))
            _apply_block(node, block)
            count = int(block.get("inputs", node.maxInputs()))
            if count > node.maxInputs() and node.maxInputs() > 0:
                raise RuntimeError("%s: inputs %d but it takes %d" % (node.name(), count, node.maxInputs()))
            upstream = []
            for _ in range(count):
                if not stack:
                    raise RuntimeError("%s: stack empty for its inputs (line %d)" % (node.name(), block.line))
                upstream.append(stack.pop())
            for index, source in enumerate(upstream):
                if source is not None:
                    node.setInput(index, source)
            stack.append(node)
            created.append(node)
    if callbacks:
        for node in created:
            _fire("onCreate", node)
    return created


# -- callbacks -------------------------------------------------------------------------------------
def _matching(kind, node):
    for call, args, kwargs, node_class, only in list(_callbacks[kind]):
        if node_class not in ("*", node.Class()):
            continue
        if only is not None and only != node:
            continue
        yield call, args, kwargs


def _fire(kind, node, knob=None):
    for call, args, kwargs in _matching(kind, node):
        _this.append((node, knob))
        try:
            call(*args, **kwargs)
        finally:
            _this.pop()


def _fire_knob_changed(node, knob):
    # As in Nuke, knobs set inside a knobChanged callback do not call it again.
    _in_knob_changed.add(node)
    try:
        _fire("knobChanged", node, knob)
    finally:
        _in_knob_changed.discard(node)


def addOnCreate(call, args=(), kwargs=None, nodeClass="*"):
    _callbacks["onCreate"].append((call, tuple(args), dict(kwargs or {}), nodeClass, None))


def addKnobChanged(call, args=(), kwargs=None, nodeClass="*", node=None):
    _callbacks["knobChanged"].append((call, tuple(args), dict(kwargs or {}), nodeClass, node))


def addUpdateUI(call, args=(), kwargs=None, nodeClass="*"):
    _callbacks["updateUI"].append((call, tuple(args), dict(kwargs or {}), nodeClass, None))


def addBeforeRender(call, args=(), kwargs=None, nodeClass="Write"):
    _callbacks["beforeRender"].append((call, tuple(args), dict(kwargs or {}), nodeClass, None))


def addBeforeFrameRender(call, args=(), kwargs=None, nodeClass="Write"):
    _callbacks["beforeFrameRender"].append((call, tuple(args), dict(kwargs or {}), nodeClass, None))


def addAfterFrameRender(call, args=(), kwargs=None, nodeClass="Write"):
    _callbacks["afterFrameRender"].append((call, tuple(args), dict(kwargs or {}), nodeClass, None))


def addAfterRender(call, args=(), kwargs=None, nodeClass="Write"):
    _callbacks["afterRender"].append((call, tuple(args), dict(kwargs or {}), nodeClass, None))


def addFilenameFilter(call, args=(), kwargs=None, nodeClass="*"):
    _filename_filters.append((call, tuple(args), dict(kwargs or {}), nodeClass))


def filenameFilter(filename):
    """``filename`` through the filters of ``addFilenameFilter`` (a studio's path remapping):
    those of the current node's class, then those of every class; ``None`` leaves it as it is."""
    return _filtered(filename, thisNode().Class())


def _filtered(filename, cls):
    for wanted in (cls, "*"):
        for call, args, kwargs, node_class in list(_filename_filters):
            if node_class == wanted:
                changed = call(filename, *args, **kwargs)
                filename = filename if changed is None else changed
    return filename


def _node_filename(node, filename):
    """As Nuke's Read and Write open files: through the filename filters, with the node's class."""
    return _filtered(filename, node.Class()) if filename else filename


def addOnScriptClose(call, args=(), kwargs=None, nodeClass="Root"):
    _callbacks["onScriptClose"].append((call, tuple(args), dict(kwargs or {}), nodeClass, None))


def _update_ui():
    """Play Nuke's idle loop once: ``updateUI`` callbacks for every node, groups included."""
    def walk(group):
        for node in group.nodes():
            _fire("updateUI", node)
            if isinstance(node, Group) and not isinstance(node, Gizmo):
                walk(node)
    walk(_root)


def frame(f=None):
    """The current frame; ``frame(f)`` moves to ``f`` (and returns it)."""
    global _frame
    if f is not None:
        _frame = int(f)
    return _frame


def thisNode():
    return _handle(_this[-1][0]) if _this else _root


def thisKnob():
    return _this[-1][1] if _this else None


# -- the node graph ----------------------------------------------------------------------------------
def root():
    return _root


def knobDefault(classknob, value=None):
    """Set the default of knob ``Class.knob`` for nodes made from now on (applied when the node is
    made, before the knob lines of a script or gizmo, so a knob they leave out takes it), or of a
    Write's ``Write.filetype.knob`` (applied when its file type is chosen, as Nuke applies format
    defaults); the default set, or ``None``. A Read's file-type defaults (``Read.exr.colorspace``)
    are not applied by the fake: it does not model when a Read's reader is chosen from its file."""
    if value is not None:
        parts = classknob.split(".")
        if len(parts) not in (2, 3) or not all(parts) or (len(parts) == 3 and parts[0] != "Write"):
            raise _FakeLimit("fake nuke: knobDefault(%r): only <Class>.<knob> and Write.<file type>.<knob>"
                             % classknob)
        _knob_defaults[classknob] = str(value)
    return _knob_defaults.get(classknob)


def createNode(node, knobs="", inpanel=True):
    """Create a node of class ``node`` in the current group context."""
    if knobs:
        raise _FakeLimit("fake nuke: createNode knobs string")
    group = _context[-1]
    created = _build(node)
    group._adopt(created)
    _fire("onCreate", created)
    if inpanel and GUI:
        created.showControlPanel()
    return created


class NodeConstructor(object):
    """``nuke.nodes.Write(file=...)``: create without connecting, selecting or opening a panel."""

    def __init__(self, cls):
        self._cls = cls

    def __call__(self, **knobs):
        node = _build(self._cls)
        _context[-1]._adopt(node, knobs.pop("name", None))
        for name, value in knobs.items():
            node[name].setValue(value)
        _fire("onCreate", node)
        return node


class Nodes(object):
    def __getattr__(self, item):
        if item.startswith("_"):
            raise AttributeError(item)
        return NodeConstructor(item)


nodes = Nodes()


def toNode(s):
    return _context[-1].node(s)


def allNodes(filter=None, group=None, recurseGroups=False):
    # recurseGroups: "all child nodes within any group nodes", recursively; a gizmo is a group
    # (nuke.Gizmo's base is Group): https://learn.foundry.com/nuke/developers/140/pythondevguide/
    # _autosummary/nuke.allNodes.html, .../131/pythondevguide/_autosummary/nuke.Gizmo.html
    where = group if group is not None else _context[-1]
    found = []
    for node in where.nodes():
        if filter is None or node.Class() == filter:
            found.append(node)
        if recurseGroups and isinstance(node, Group):
            found.extend(allNodes(filter, node, True))
    return found


def delete(n):
    group = n._group
    if group is None or n not in group._nodes:
        raise ValueError("node already deleted")
    group._nodes.remove(n)
    for other in group._nodes:
        other._inputs = [None if x == n else x for x in other._inputs]
    n._group = None


def execute(nameOrNode, start, end, incr=1, views=None, continueOnError=False):
    """Render a Write node's frames ``start``..``end`` to real EXR files."""
    node = toNode(nameOrNode) if isinstance(nameOrNode, str) else nameOrNode
    if node is None or node.Class() != "Write":
        raise RuntimeError("%s cannot be executed" % (nameOrNode if isinstance(nameOrNode, str) else node.name()))
    if node["disable"].value():
        raise RuntimeError("%s is disabled" % node.name())
    if node._group is None:
        raise RuntimeError("node was deleted")
    if _root["proxy"].value():  # Nuke renders at the proxy scale (to the proxy file): not faked
        raise _FakeLimit("fake nuke: execute in proxy mode")
    chosen = _views_to_render(node, views)
    global _frame
    _render_callback("beforeRender", node)
    now = _frame
    try:
        for number in range(int(start), int(end) + 1, int(incr)):
            _frame = number
            _render_callback("beforeFrameRender", node)
            for view in chosen:
                _rendering_view.append(view)
                try:
                    node._write_frame(number)
                finally:
                    _rendering_view.pop()
            _render_callback("afterFrameRender", node)
    finally:
        _frame = now
    _render_callback("afterRender", node)


# -- views (stereo and multi-view scripts) ------------------------------------------------------------
# As Nuke documents them: the Root's ``views`` knob lists the script's views (``{{left #ff0000}
# {right #00ff00}}`` in a .nk file; a new script has one, ``main``) and ``nuke.views()`` their names
# (learn.foundry.com/nuke/content/comp_environment/stereoscopic_films/stereo_projects.html); ``%V`` in
# a Read's or Write's file is the view's name, ``%v`` its first letter (.../loading_multi_view_images.html);
# ``nuke.execute(..., views=None)`` renders every view, or those listed (pythondevguide nuke.execute /
# nuke.executeMultiple: "views - Optional list of views. Default is None. Execute for all."). A Write
# of several views into one file without %V is a multi-view EXR in Nuke (.../rendering_stereo_images.html),
# which the fake does not write.
_rendering_view = []  # the view execute() renders now (innermost last)


def views():
    """The script's view names, in the order of the Root's ``views`` knob."""
    text = _root["views"].value()
    names = re.findall(r"\{\s*([^\s{}\"]+)", text) if "{" in text else [line.split()[0] for line in
                                                                     text.splitlines() if line.strip()]
    return names or ["main"]


def _view_file(path):
    """``path`` with ``%V`` / ``%v`` filled in for the view rendered now (else the script's first view)."""
    view = _rendering_view[-1] if _rendering_view else views()[0]
    return path.replace("%V", view).replace("%v", view[:1])


def _views_to_render(node, chosen):
    names = views()
    if chosen is None:
        chosen = names
    unknown = [v for v in chosen if v not in names]
    if unknown:
        raise _FakeLimit("fake nuke: execute of views %s, which the script lacks (%s)" % (unknown, names))
    if len(chosen) > 1 and not re.search("%[Vv]", node["file"].value()):
        raise _FakeLimit("fake nuke: a Write of views %s into one file (Nuke writes one multi-view EXR)" % chosen)
    return list(chosen)


def _render_callback(kind, node):
    """The ``kind`` callbacks of ``node``: its own knob's Python (the Write's Python tab) first, then
    those added with ``nuke.addBeforeRender`` and so on (Nuke's order is not documented)."""
    try:
        code = node[kind].value() if kind in node.knobs() else ""
        if code.strip():
            _this.append((node, None))
            try:
                exec(code, {"nuke": sys.modules[__name__]})
            finally:
                _this.pop()
        _fire(kind, node)
    except Exception as exc:  # as in Nuke: a callback that raises stops the render
        raise RuntimeError("%s: %s" % (kind, exc)) from exc


# -- UI-ish ---------------------------------------------------------------------------------------------
def message(prompt):
    _messages.append(prompt)


class ProgressTask(object):
    """A progress bar: ``isCancelled`` asks ``nuke._cancel_hook(task)`` when a test set it."""

    def __init__(self, title):
        self._title = title
        self._messages = []
        self._progress = []
        _progress_tasks.append(self)

    def setMessage(self, message):
        self._messages.append(message)

    def setProgress(self, progress):
        if not isinstance(progress, int) or not 0 <= progress <= 100:
            raise ValueError("progress must be an int in 0..100, got %r" % (progress,))
        self._progress.append(progress)

    def isCancelled(self):
        return bool(_cancel_hook(self)) if _cancel_hook is not None else False


def executeInMainThread(call, args=(), kwargs=None):
    if not isinstance(args, tuple):
        raise TypeError("args must be a tuple")
    with _lock:
        _main_queue.append((call, args, dict(kwargs or {})))


class MenuItem(object):
    def __init__(self, name, script=None, icon=None, shortcut=None):
        self._name = name
        self._script = script
        self._icon = icon or ""
        self._shortcut = shortcut or ""

    def name(self):
        return self._name

    def script(self):
        return self._script

    def icon(self):
        return self._icon

    def shortcut(self):
        return self._shortcut

    def invoke(self):
        if callable(self._script):
            return self._script()
        exec(self._script, {"nuke": sys.modules[__name__]})


class Menu(MenuItem):
    def __init__(self, name, icon=None):
        MenuItem.__init__(self, name, icon=icon)
        self._items = []

    def items(self):
        return list(self._items)

    def findItem(self, name):
        head, _, rest = name.partition("/")
        for item in self._items:
            if item.name() == head:
                if rest:
                    return item.findItem(rest) if isinstance(item, Menu) else None
                return item
        return None

    def menu(self, name):
        found = self.findItem(name)
        return found if isinstance(found, Menu) else None

    def addMenu(self, name, icon=None, index=None):
        existing = self.menu(name)
        if existing is not None:
            return existing
        child = Menu(name, icon)
        self._items.append(child)
        return child

    def addCommand(self, name, command=None, shortcut=None, icon=None, tooltip=None, index=None,
                   readonly=False, shortcutContext=None, tag=None, tagTarget=None):
        if not GUI:
            raise RuntimeError("menus exist only in the GUI")
        head, _, rest = name.rpartition("/")
        parent = self.addMenu(head) if head else self
        item = MenuItem(rest, command, icon, shortcut)
        parent._items.append(item)
        return item


def menu(name):
    if not GUI:
        raise RuntimeError("nuke.menu() needs the GUI")
    if name not in _menus:
        _menus[name] = Menu(name)
    return _menus[name]


# -- plugin path and scripts -------------------------------------------------------------------------
def pluginAddPath(args, addToSysPath=True):
    for folder in [args] if isinstance(args, str) else list(args):
        _add_plugin_folder(folder)


def pluginPath():
    return list(_plugin_path)


def scriptOpen(filename=None):
    """Load a ``.nk`` script into the (empty) root, running onCreate callbacks."""
    if _root.nodes():
        raise _FakeLimit("fake nuke: scriptOpen with a script already open")
    if not os.path.isfile(filename):
        raise RuntimeError("%s: No such file or directory" % filename)
    with open(filename) as handle:
        text = handle.read()
    try:
        ops = _nk.parse_script(text)
    except _nk.NkSyntaxError as exc:
        raise RuntimeError("%s: %s" % (filename, exc)) from exc
    _root["name"]._value = os.path.abspath(filename)
    _load_ops(ops, _root)


def scriptClose(*args, **kwargs):
    """Close the script: ``onScriptClose`` callbacks, then an empty root (callbacks stay)."""
    global _root, _context
    _fire("onScriptClose", _root)
    _root = Root()
    _context = [_root]


def scriptSave(filename=None):
    """Write the root's nodes as a ``.nk`` script (gizmos by class and non-default knobs)."""
    path = filename or _root["name"].value()
    if not path:
        raise RuntimeError("script has no name")
    lines = ["#! %s -nx" % EXE_PATH, "version %s" % NUKE_VERSION_STRING.replace("v", " v"), "Root {", " inputs 0",
             " name %s" % _nk.quote(os.path.abspath(path)),
             " first_frame %d" % _root["first_frame"].value(), " last_frame %d" % _root["last_frame"].value()]
    fresh = Root()
    for name in ("views", "proxy", "proxy_type", "proxy_scale", "proxy_format"):  # as Nuke: those not at their default
        if _root[name].toScript() != fresh[name].toScript():
            lines.append(" %s %s" % (name, _root[name].toScript()))
    lines.append("}")
    ids = {}
    for node in _root.nodes():
        if isinstance(node, Group) and not isinstance(node, Gizmo):
            raise _FakeLimit("fake nuke: saving Group nodes")
        count = node.inputs()
        for index in reversed(range(count)):
            upstream = node.input(index)
            if upstream is None:
                lines.append("push 0")
            elif upstream in ids:
                lines.append("push $%s" % ids[upstream])
            else:
                raise _FakeLimit("fake nuke: saving a node before its input")
        lines.append("%s {" % node.Class())
        if count != node.maxInputs() or node.maxInputs() == 0:
            lines.append(" inputs %d" % count)
        for name in node._knob_order:
            knob = node._knobs[name]
            if name == "name" or "DO_NOT_WRITE" in getattr(knob, "_user_flags", ()):
                continue
            if isinstance(knob, (Tab_Knob, Script_Knob)) and not isinstance(knob, PyScript_Knob):
                continue
            script = knob.toScript()
            if script != node._defaults.get(name):
                lines.append(" %s %s" % (name, script))
        lines.append(" name %s" % _nk.quote(node.name()))
        lines.append("}")
        ids[node] = "N%d" % (len(ids) + 1)
        lines.append("set %s [stack 0]" % ids[node])
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    _root["name"]._value = os.path.abspath(path)
    return True


_reset()
if os.environ.get("NUKE_PATH"):
    _startup()
