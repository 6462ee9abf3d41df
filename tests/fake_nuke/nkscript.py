# ruff: noqa: UP004, UP031  (written like nuke_plugin, which ruff.toml exempts from UP for Nuke 13's Python 3.7)
"""A small parser (and writer) for Nuke's ``.nk`` / ``.gizmo`` syntax — the subset LBSMatte uses.

Nuke scripts are TCL: commands one per line, words separated by spaces, ``{...}`` groups taken
literally (braces nest), ``"..."`` strings with backslash escapes. Inside a quoted string an
unescaped ``[`` or ``$`` would be a TCL substitution at load time, which a knob value never
wants: the parser refuses them (Nuke writes ``\\[`` and ``\\$``).

Structure::

    version 13.0 v1
    Gizmo { knob value ... addUserKnob {4 name l label M {a b c}} ... }   (or Root, or a node)
     Input { inputs 0 name plate }
     Read { file "\\[value parent.result_file]" first {{parent.result_first}} name Result }
     Output { name Output1 }
    end_group
    set N1 [stack 0]          push $N1          push 0

A node takes its inputs from the stack (the top is input 0) and pushes itself.
"""

import re


class NkSyntaxError(ValueError):
    """The text is not valid ``.nk`` syntax (message names the line)."""


class Word(object):
    """One TCL word: ``kind`` is ``bare``, ``quoted``, ``braced`` or ``bracket``."""

    __slots__ = ("kind", "value", "line")

    def __init__(self, kind, value, line):
        self.kind = kind
        self.value = value
        self.line = line

    def __repr__(self):
        return "Word(%s, %r)" % (self.kind, self.value)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "[": "[", "]": "]", "$": "$", "{": "{", "}": "}"}


def _braced(text, i, line):
    """``text[i] == '{'``: return (content, index after the closing brace, line)."""
    depth = 0
    start = i + 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "\n":
            line += 1
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start:i], i + 1, line
        i += 1
    raise NkSyntaxError("line %d: unbalanced braces: '{' is never closed" % line)


def _quoted(text, i, line):
    """``text[i] == '"'``: return (unescaped content, index after the closing quote, line)."""
    out = []
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text):
                break
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1, line
        if c == "[":
            raise NkSyntaxError("line %d: unescaped '[' in a quoted string (TCL would run it as a command at load; "
                                "write \\[)" % line)
        if c == "$" and i + 1 < len(text) and (text[i + 1].isalnum() or text[i + 1] in "_{"):
            raise NkSyntaxError("line %d: unescaped '$' in a quoted string (TCL variable substitution; write \\$)" % line)
        if c == "\n":
            line += 1
        out.append(c)
        i += 1
    raise NkSyntaxError("line %d: unterminated string" % line)


def _bracket(text, i, line):
    depth = 0
    start = i
    while i < len(text):
        c = text[i]
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return text[start:i + 1], i + 1, line
        elif c == "\n":
            line += 1
        i += 1
    raise NkSyntaxError("line %d: unbalanced '['" % line)


def split_commands(text, first_line=1):
    """Split TCL text into commands, each a list of :class:`Word`."""
    commands = []
    current = []
    i = 0
    line = first_line
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            if current:
                commands.append(current)
                current = []
            line += 1
            i += 1
        elif c in " \t\r;":
            if c == ";" and current:
                commands.append(current)
                current = []
            i += 1
        elif c == "\\" and i + 1 < n and text[i + 1] == "\n":
            i += 2  # line continuation
            line += 1
        elif c == "#" and not current:
            while i < n and text[i] != "\n":
                i += 1
        elif c == "{":
            start_line = line
            content, i, line = _braced(text, i, line)
            current.append(Word("braced", content, start_line))
        elif c == '"':
            start_line = line
            content, i, line = _quoted(text, i, line)
            current.append(Word("quoted", content, start_line))
        elif c == "[":
            start_line = line
            content, i, line = _bracket(text, i, line)
            current.append(Word("bracket", content, start_line))
        elif c == "}":
            raise NkSyntaxError("line %d: unbalanced braces: '}' without '{'" % line)
        else:
            start = i
            while i < n and text[i] not in " \t\r\n;{}\"":
                if text[i] == "\\":
                    i += 1
                i += 1
            current.append(Word("bare", text[start:i], line))
    if current:
        commands.append(current)
    return commands


class UserKnob(object):
    """An ``addUserKnob {CODE name l label t tooltip T value M {items} +FLAG -FLAG}`` line."""

    def __init__(self, code, name, line):
        self.code = code
        self.name = name
        self.line = line
        self.label = None
        self.tooltip = ""
        self.value = None
        self.menu = None
        self.flags = set()
        self.cleared = set()
        self.range = None
        self.tab_group = None

    def __repr__(self):
        return "UserKnob(%d, %r)" % (self.code, self.name)


def parse_user_knob(word):
    """Parse the braced argument of ``addUserKnob``."""
    words = split_commands(word.value, word.line)
    words = [w for cmd in words for w in cmd]
    if len(words) < 2:
        if len(words) == 1:
            words.append(Word("bare", "", word.line))
        else:
            raise NkSyntaxError("line %d: addUserKnob needs a type and a name" % word.line)
    try:
        code = int(words[0].value)
    except ValueError:
        raise NkSyntaxError("line %d: addUserKnob type %r is not a number" % (word.line, words[0].value)) from None
    knob = UserKnob(code, words[1].value, word.line)
    i = 2
    while i < len(words):
        w = words[i].value
        if w in ("l", "t", "T", "n") and i + 1 < len(words):
            value = words[i + 1].value
            if w == "l":
                knob.label = value
            elif w == "t":
                knob.tooltip = value
            elif w == "T":
                knob.value = value
            else:
                knob.tab_group = int(value)
            i += 2
        elif w == "M" and i + 1 < len(words):
            items = [x for cmd in split_commands(words[i + 1].value, word.line) for x in cmd]
            knob.menu = [x.value for x in items if x.value != ""]
            i += 2
        elif w == "R" and i + 2 < len(words):
            knob.range = (float(words[i + 1].value), float(words[i + 2].value))
            i += 3
        elif w.startswith("+") and len(w) > 1:
            knob.flags.add(w[1:])
            i += 1
        elif w.startswith("-") and len(w) > 1 and not w[1:].replace(".", "").isdigit():
            knob.cleared.add(w[1:])
            i += 1
        else:
            raise NkSyntaxError("line %d: addUserKnob %s: unexpected %r" % (word.line, knob.name, w))
    return knob


class NodeBlock(object):
    """``Class { ... }``: knob lines in order (``(name, Word)``) and user knobs."""

    def __init__(self, cls, line):
        self.cls = cls
        self.line = line
        self.items = []  # ("knob", name, Word) or ("user", UserKnob)

    def knob_values(self):
        return [(item[1], item[2]) for item in self.items if item[0] == "knob"]

    def user_knobs(self):
        return [item[1] for item in self.items if item[0] == "user"]

    def get(self, name, default=None):
        for item in self.items:
            if item[0] == "knob" and item[1] == name:
                return item[2].value
        return default

    def __repr__(self):
        return "NodeBlock(%s, %s)" % (self.cls, self.get("name"))


def parse_block(cls, word):
    block = NodeBlock(cls, word.line)
    for command in split_commands(word.value, word.line):
        head = command[0].value
        if head == "addUserKnob":
            if len(command) != 2 or command[1].kind != "braced":
                raise NkSyntaxError("line %d: addUserKnob takes one {...} argument" % command[0].line)
            block.items.append(("user", parse_user_knob(command[1])))
        elif len(command) == 2:
            block.items.append(("knob", head, command[1]))
        else:
            raise NkSyntaxError("line %d: %s: expected 'knob value', got %d words" % (command[0].line, cls, len(command)))
    return block


def read_gizmo(path):
    """A gizmo file parsed for the tests: ``{"text", "ops", "header", "inner"}`` (the Gizmo block
    first, then the nodes inside it, in order)."""
    with open(path) as handle:
        text = handle.read()
    ops = parse_script(text)
    blocks = [op[1] for op in ops if op[0] == "node"]
    return {"text": text, "ops": ops, "header": blocks[0], "inner": blocks[1:]}


def parse_script(text):
    """Parse a script or gizmo into a list of operations.

    Returns
    -------
    list of tuples
        ``("node", NodeBlock)``, ``("set", var)``, ``("push", var or None)``, ``("end_group",)``,
        ``("version", text)``, ``("add_layer", [layer, channel, ...])``.
    """
    ops = []
    for command in split_commands(text):
        head = command[0]
        if head.value == "version":
            ops.append(("version", " ".join(w.value for w in command[1:])))
        elif head.value == "set":
            if len(command) != 3 or command[2].kind != "bracket" or command[2].value.replace(" ", "") != "[stack0]":
                raise NkSyntaxError("line %d: only 'set VAR [stack 0]' is understood" % head.line)
            ops.append(("set", command[1].value))
        elif head.value == "push":
            if len(command) != 2:
                raise NkSyntaxError("line %d: push takes one argument" % head.line)
            arg = command[1].value
            if arg == "0":
                ops.append(("push", None))
            elif arg.startswith("$"):
                ops.append(("push", arg[1:]))
            else:
                raise NkSyntaxError("line %d: push %s: expected $VAR or 0" % (head.line, arg))
        elif head.value == "end_group":
            ops.append(("end_group",))
        elif head.value == "add_layer" and len(command) == 2 and command[1].kind == "braced":
            ops.append(("add_layer", command[1].value.split()))
        elif len(command) == 2 and command[1].kind == "braced" and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", head.value):
            ops.append(("node", parse_block(head.value, command[1])))
        else:
            raise NkSyntaxError("line %d: cannot understand %r" % (head.line, " ".join(w.value for w in command)))
    return ops


_BARE = re.compile(r"^[A-Za-z0-9_./:+-]+$")


def quote(value):
    """A string as a ``.nk`` word: bare when safe, else a quoted string with escapes."""
    text = str(value)
    if text and _BARE.match(text):
        return text
    out = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif c in "[]${}":
            out.append("\\" + c)
        else:
            out.append(c)
    return '"%s"' % "".join(out)
