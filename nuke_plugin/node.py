"""Everything that reads or writes the LBSMatte gizmo's knobs and internal nodes.

This and :mod:`nuke_plugin.callbacks`, :mod:`nuke_plugin.buttons` and :mod:`nuke_plugin.batch`
are the only modules that talk to Nuke; the knob names live here, in :data:`KNOBS`, and
``tests/test_gizmo.py`` checks that every one of them exists in ``gizmos/LBSMatte.gizmo``.

The internal ``Read`` (named ``Result``) is driven by expressions on hidden knobs of the gizmo
(``result_file``, ``result_first``, ``result_last``, ``result_ready``): the inside of a gizmo
is rebuilt from the ``.gizmo`` file when a script loads, so only the gizmo's own knobs are
saved with the script. A comp rendered on the farm after ``batch.py`` therefore reads the
precomputed cache without running any Python.
"""

import contextlib
import hashlib
import json
import os
import re

import nuke

from nuke_plugin import NODE_CLASS, bundles, cache, exr
from nuke_plugin.errors import NodeError

#: Knobs of the gizmo that the Python reads or writes (``tests/test_gizmo.py`` checks them).
KNOBS = (
    "weights", "weights_list", "device", "trimap_channel", "trimap_from", "colour", "ocio_colourspace",
    "premultiply", "rounds", "trimap_input", "edge_width", "show_trimap", "cache_dir", "frame_range",
    "first_frame", "last_frame", "status",
    "result_file", "result_first", "result_last", "result_ready", "result_key", "trimap_file",
    "result_shown", "trimap_shown", "result_inputs", "result_stale", "accept_stale",
)
#: Knobs whose change makes the shown result stale (the Read is switched off until Compute).
SETTING_KNOBS = ("weights", "device", "trimap_channel", "colour", "ocio_colourspace", "premultiply", "rounds",
                 "trimap_input", "edge_width", "cache_dir", "trimap_from")
#: Setting knobs newer than the records of older LBSMattes (:func:`settings_hash` ``legacy``): left
#: out of their hash while at their default, so that a saved script's result stays current.
NEWER_SETTING_KNOBS = ("trimap_from",)
#: Name of the internal Reads (the matte; the trimap the tool used), and of the gizmo's Input nodes.
RESULT_READ = "Result"
TRIMAP_READ = "Trimap"
#: The *trimap input* menu: a trimap as it is, or a rough matte made into one (``--edge``).
TRIMAP_INPUTS = ("trimap", "rough matte")
PLATE_INPUT, TRIMAP_INPUT = 0, 1
DEVICES = ("auto", "cpu", "cuda")
TRIMAP_CHANNELS = ("auto", "alpha", "red", "luminance")
#: The *trimap from* channel knob when no channel is picked (the trimap is read from ``rgba``).
NO_CHANNEL = "none"
COLOURS = ("linear", "srgb", "ocio")
#: Extra layers of the result, as Nuke names their channels (EXR ``fg.R`` reads as ``fg.red``).
LAYERS = (("fg", ("fg.red", "fg.green", "fg.blue")), ("bg", ("bg.red", "bg.green", "bg.blue")))
#: The most *refine rounds* the tool takes (``--rounds``; the highest of
#: ``core.compositing.WHOLE_NUMBER_RANGES["rounds"]``, which this layer cannot import:
#: tests/test_contracts.py holds them equal). More is refused at Compute rather than run for weeks.
MAX_ROUNDS = 100


def is_lbsmatte(node):
    """Whether ``node`` is an LBSMatte gizmo."""
    return node is not None and node.Class() == NODE_CLASS


def register_layers():
    """Make the ``fg`` and ``bg`` layers known to Nuke (``nuke.Layer``), channels R G B."""
    for name, channels in LAYERS:
        nuke.Layer(name, list(channels))


# -- settings ---------------------------------------------------------------------------------
def local_path(path):
    """``path`` (a folder or file from a knob) as this machine opens it: through the studio's
    filename filters (``nuke.addFilenameFilter``), as Nuke's own Read and Write open theirs, so a
    script saved with ``Z:/cache`` on a Windows workstation finds ``/mnt/z/cache`` on a Linux farm.
    Without filters (or for ``""``) the path as it is."""
    if not path:
        return path
    filtered = nuke.filenameFilter(path)
    return path if filtered is None else filtered


def weights_folder_text(node):
    """The ``weights`` knob as :func:`weights_value`, a folder through :func:`local_path` (the
    knob's text itself, which the cache key and the stale check hold, stays as saved)."""
    weights = weights_value(node)
    return local_path(weights) if bundles.names_folder(weights) else weights


def weights_value(node):
    """The ``weights`` knob: a bundle name or a bundle folder (``default`` when empty)."""
    return node["weights"].value().strip() or bundles.DEFAULT_NAME


def read_settings(node):
    """The settings that change the result, and the bundle they name.

    Returns
    -------
    (cache.Settings, bundles.BundleInfo or None)

    Raises
    ------
    NodeError
        When the ``weights`` knob names no bundle that can be found (listing those found), or
        the OCIO colourspace is empty, or given while ``$OCIO`` is not set.
    """
    from nuke_plugin import interpreter

    weights = weights_value(node)
    where = weights_folder_text(node)  # a folder saved on another system, remapped for this one
    core = interpreter.core_dir()
    base = script_folder()
    bundle = bundles.resolve_bundle(where, core_dir=core, base=base)
    if bundle is None and (core is not None or weights != bundles.DEFAULT_NAME):
        why = bundles.why_not_found(where, core_dir=core, base=base)
        if why is not None:  # a folder of that name skipped, or holding another bundle: say so, not "not found"
            raise NodeError(why)
        found = [b.name for b in bundles.find_bundles(core_dir=core)]
        raise NodeError(
            "weights bundle %r not found.\nFound: %s\nSearched: %s and %s=%s, and the folder %s"
            % (weights, ", ".join(found) or "none",
               bundles.default_bundle_dir(core) or "(the core package was not found)",
               bundles.WEIGHTS_PATH_ENV, os.environ.get(bundles.WEIGHTS_PATH_ENV, ""),
               os.path.abspath(bundles.knob_folder(where, base)))
        )
    colour = node["colour"].value()
    if colour == "ocio":
        colour = node["ocio_colourspace"].value().strip()
        if not colour:
            raise NodeError("input colour is 'ocio' but no OCIO colourspace is given")
        if not os.environ.get("OCIO", "").strip() and colour.lower() not in ("linear", "srgb"):
            # The core runs outside Nuke: a config chosen in the Project Settings alone is not its.
            raise NodeError("input colour is 'ocio' (%r) but $OCIO is not set: the core runs outside Nuke and reads "
                            "the OpenColorIO config from $OCIO, not from the Project Settings; set OCIO to the config "
                            "file (or a built-in config such as ocio://studio-config-latest) before starting Nuke"
                            % colour)
    rounds = node["rounds"].value()
    if rounds != int(rounds) or not -1 <= rounds <= MAX_ROUNDS:
        raise NodeError("refine rounds must be a whole number from 0 to %d (0: the networks alone), or -1 for the "
                        "number the weights bundle records, not %r" % (MAX_ROUNDS, rounds))
    trimap_input = node["trimap_input"].value()
    edge = node["edge_width"].value()
    if trimap_input == "rough matte" and (edge != int(edge) or edge < 1):
        raise NodeError("edge width must be a whole number of pixels > 0 (the unknown band each side of the "
                        "rough matte's edge), not %r" % (edge,))
    settings = cache.Settings(
        trimap_from=trimap_from_value(node),
        weights=weights,
        bundle_sha256=bundle.manifest_sha256() if bundle is not None else None,
        device=node["device"].value(),
        colour=colour,
        trimap_channel=node["trimap_channel"].value(),
        premultiply=bool(node["premultiply"].value()),
        rounds=int(rounds),
        trimap_input=trimap_input,
        edge=int(edge),
    )
    return settings, bundle


def trimap_from_value(node):
    """The *trimap from* knob: the channel of the trimap input that holds the trimap (``mask.a``,
    ``trimap.red``), or ``""`` when none is picked (the trimap is read from ``rgba``, as *trimap
    channel* says)."""
    value = (node["trimap_from"].value() or "").strip()
    return "" if value == NO_CHANNEL else value


def frame_range(node):
    """``(first, last)`` from the *frame range* knobs: the plate's range, the script's, or custom."""
    mode = node["frame_range"].value()
    if mode == "input":
        plate = input_node(node, PLATE_INPUT)
        first, last = int(plate.firstFrame()), int(plate.lastFrame())
    elif mode == "global":
        root = nuke.root()
        first, last = int(root["first_frame"].value()), int(root["last_frame"].value())
    else:
        first, last = int(node["first_frame"].value()), int(node["last_frame"].value())
    if last < first:
        raise NodeError("frame range %d-%d is empty (last frame before first)" % (first, last))
    return first, last


def outside_input_ranges(node, first, last):
    """Why frames of ``first``-``last`` may not be what the artist means: one line for the plate
    input and one for the trimap input whose frame range they reach past (a custom or the script's
    range past the plate's; roto delivered for part of the shot, or one trimap frame held), where
    Nuke gives what its nodes give there (a Read holds its first or last frame, or black), which is
    matted as it is. An empty list when every frame is inside both."""
    lines = []
    for index, what in ((PLATE_INPUT, "plate"), (TRIMAP_INPUT, "trimap")):
        source = input_node(node, index)
        start, end = int(source.firstFrame()), int(source.lastFrame())
        outside = [f for f in range(first, last + 1) if not start <= f <= end]
        if outside:
            lines.append("frame(s) %s are outside the %s's frame range %d-%d (%s): they are matted from what Nuke "
                         "gives there (a Read holds its first or last frame, or gives black)"
                         % (frame_ranges(outside), what, start, end, source.name()))
    return lines


def script_folder():
    """The saved script's folder, from which a relative folder in the *weights* and *cache folder*
    knobs is read (None for an unsaved script: then from the current folder)."""
    script = nuke.root()["name"].value()
    return os.path.dirname(os.path.abspath(script)) if script else None


def cache_dir(node):
    """The *cache folder* knob (TCL evaluated; a relative folder is read from the script's folder,
    :func:`nuke_plugin.cache.absolute_cache_dir`), or the default next to the script.

    Raises
    ------
    NodeError
        The knob holds a frame number token (:func:`check_no_frame_token`): Nuke's
        ``File_Knob.evaluate()`` puts the current frame's number in for it, so the folder would
        be another at each frame Compute is pressed (or ``batch.py`` opens the script) at.
    """
    knob = node["cache_dir"]
    text = knob.value().strip()
    check_no_frame_token(node, text)
    try:
        value = (knob.evaluate() or "").strip() if text else ""
    except RuntimeError as exc:  # Nuke's TCL error: a folder named 'Shot [v2]' runs the command v2
        raise NodeError(
            "%s: the cache folder %s cannot be read: Nuke evaluates the knob as TCL (%s). A folder whose name holds "
            "[ ] or $ is typed \\[ \\] \\$ in the knob (or set LBSMATTE_CACHE, which is taken as it is), or "
            "rename the folder" % (node.name(), text, exc)) from exc
    script = nuke.root()["name"].value()
    if value:
        return cache.absolute_cache_dir(local_path(value), script)
    return cache.default_cache_dir(script)


def check_no_frame_token(node, folder):
    """:class:`NodeError` when ``folder`` holds what Nuke takes for a frame number in a file path,
    in a folder's name too (``/shows/sh#01``, ``C:/jobs/%02d``), or for the view (``%V`` the view's
    name, ``%v`` its first letter; ``main`` in a script of one view): the baked inputs and the
    results would be written and read elsewhere than the cache (``.../cache_left/`` for the bake
    Write, a Read of a folder of each view for the result)."""
    match = re.search(r"#|%0?\d*d", folder)
    if match:
        raise NodeError(
            "%s: the cache folder %s has %r in it, which Nuke reads as a frame number anywhere in a file path: "
            "set the node's cache folder (or LBSMATTE_CACHE) to a folder without it"
            % (node.name(), folder, match.group(0)))
    match = re.search(r"%[Vv]", folder)
    if match:
        raise NodeError(
            "%s: the cache folder %s has %r in it, which Nuke reads as the view (%%V its name, %%v its first letter) "
            "anywhere in a file path: set the node's cache folder (or LBSMATTE_CACHE) to a folder without it. One "
            "cache folder serves every view (the cache keys tell the results apart)"
            % (node.name(), folder, match.group(0)))


def enclosing_gizmo(node):
    """The gizmo ``node`` sits in (at any depth; a Group is not one), or None.

    Nuke saves only a gizmo's own knobs with the script and rebuilds its inside from the
    ``.gizmo`` file when the script opens: the hidden result knobs of an LBSMatte node in there
    would be lost, as this module's notes say of the LBSMatte gizmo's own inside."""
    parent = node.parent()
    while parent is not None and not isinstance(parent, nuke.Root):
        if isinstance(parent, nuke.Gizmo):
            return parent
        parent = parent.parent()
    return None


def check_not_in_gizmo(node):
    """:class:`NodeError` when ``node`` is inside a gizmo (:func:`enclosing_gizmo`): its result
    would not be saved with the script, and a farm render of it would have none."""
    gizmo = enclosing_gizmo(node)
    if gizmo is not None:
        raise NodeError(
            "%s is inside the gizmo %s (%s), whose inside Nuke rebuilds from that file when the script opens: "
            "its result would not be saved with the script, and a render of the script would have none. "
            "Make the gizmo a Group (a show's gizmo: export it as a Group, or copy it to a group in the "
            "script) or put the LBSMatte node outside it"
            % (node.fullName(), gizmo.fullName(), gizmo.filename()))


def input_node(node, index):
    """The node connected to input ``index`` (0 plate, 1 trimap); :class:`NodeError` if none."""
    upstream = node.input(index)
    if upstream is None:
        # A plate whose own alpha holds the trimap (one input) is read from the trimap input too.
        hint = " (a plate whose alpha holds the trimap: connect the plate to the trimap input too)" \
            if index == TRIMAP_INPUT else ""
        raise NodeError("%s: connect a %s to input %d%s" % (node.name(), ("plate", "trimap")[index], index, hint))
    return upstream


# -- staleness ----------------------------------------------------------------------------------
#: Written into the internal Read's ``file`` when the result is stale: the Read cannot find it,
#: so the viewer shows Nuke's red Read error with this text and a render of the node fails.
STALE_MARK = "STALE - %s - press Compute, or turn on accept stale result"
#: Set while :func:`bake` renders its temporary Writes (the render check must not stop them).
_baking = []  # type: list
#: The bakes' EXR compression (Nuke's default, lossless), set on each Write: a studio's
#: ``knobDefault("Write.exr.compression", "DWAA")`` reaches the Writes it makes too.
BAKE_COMPRESSION = "Zip (1 scanline)"
#: The baked plate's EXR data type: float, so that no value of the plate becomes inf (see :func:`_bake`).
PLATE_DATATYPE = "32 bit float"
#: Knobs of a bake Write that a studio's knob defaults (``knobDefault("Write.exr.autocrop", "true")``,
#: ``knobDefault("Write.afterRender", "studio.publish()")``) or its onCreate callbacks would otherwise set,
#: set as the bake needs them where the Write has them: autocrop would shrink the baked plate's data
#: window (the result gets it, and loses the matte outside it), and a Write's own render callbacks
#: (its Python tab) would run a studio's publish or naming hook on a temporary file.
BAKE_WRITE_KNOBS = (("autocrop", False), ("beforeRender", ""), ("beforeFrameRender", ""),
                    ("afterFrameRender", ""), ("afterRender", ""))
#: What a studio's callbacks that are not the Write's own are added with (named when they interfere).
STUDIO_CALLBACKS = ("nuke.addOnCreate, addKnobChanged, addBeforeRender, addBeforeFrameRender, addAfterFrameRender "
                    "or addAfterRender, for Write nodes, in a menu.py or init.py on the plugin path")


def _menu_value(knob, frame):
    """A menu's entry at ``frame`` (``None``: the current frame)."""
    return knob.value() if frame is None else knob.enumName(int(knob.getValueAt(frame)))


def settings_in_use(node, frame=None):
    """Names of the setting knobs that take part, as in the cache key: the edge width only when the
    trimap input is a rough matte, the OCIO colourspace only when the input colour is ``ocio``.
    Those two menus are read at ``frame`` (Compute's first frame, where it reads every setting;
    default the current frame): keyed otherwise elsewhere, they do not change what takes part."""
    names = list(SETTING_KNOBS)
    if trimap_from_value(node):
        names.remove("trimap_channel")  # the channel picked is read, as alpha
    else:
        names.remove("trimap_from")
    if _menu_value(node["trimap_input"], frame) != "rough matte":
        names.remove("edge_width")
    if _menu_value(node["colour"], frame) != "ocio":
        names.remove("ocio_colourspace")
    return names


def animated_settings(node, frame=None):
    """Names of the setting knobs in use at ``frame`` (see :func:`settings_in_use`) with keyframes or an
    expression (their value may differ by frame)."""
    return [name for name in settings_in_use(node, frame)
            if node[name].isAnimated() or node[name].hasExpression()]


def _shown_value(knob, value):
    """``getValueAt``'s number as the panel shows it: a menu's entry, else the number."""
    return knob.enumName(int(value)) if hasattr(knob, "enumName") else "%g" % value


def check_constant_settings(node, first, last):
    """:class:`NodeError` when an animated setting knob (keyframes, or an expression such as one
    linked to a knob that is keyed) has another value somewhere in ``first``-``last``: one Compute
    runs the core once with one value for every frame, so the other frames would silently get
    the value of one frame. A knob animated to the same value throughout is fine."""
    for name in animated_settings(node, first):
        knob = node[name]
        start = knob.getValueAt(first)
        for frame in range(first + 1, last + 1):
            value = knob.getValueAt(frame)
            if value != start:
                raise NodeError(
                    "%s: the %s knob is animated (%s at frame %d, %s at frame %d) but one Compute uses one "
                    "value for every frame: remove its keyframes or expression, or give each part of the range "
                    "its own LBSMatte node with a custom frame range"
                    % (node.name(), knob.label() or name, _shown_value(knob, start), first,
                       _shown_value(knob, value), frame))


@contextlib.contextmanager
def at_frame(frame):
    """Move Nuke's current frame to ``frame`` for the block (knob values are read there), and back."""
    before = nuke.frame()
    if before != int(frame):
        nuke.frame(int(frame))
    try:
        yield
    finally:
        if nuke.frame() != before:
            nuke.frame(before)


def settings_hash(node, legacy=False, frame=None):
    """Hash of the setting knobs' values as they stand (no file system, no subprocess).

    A knob that does not take part leaves it out, as the cache key does: the edge width unless
    the trimap input is a rough matte, the OCIO colourspace unless the input colour is ``ocio``
    (those menus read at ``frame``); an empty ``weights`` is ``default``. An animated knob
    (keyframes, expression) counts with its value at ``frame`` (the first frame of the result; default the current frame) as well as its
    script: an expression linked to another knob reads the same when that knob changes.
    ``legacy``: every knob as written (what LBSMatte recorded before), so that results of saved
    scripts are not made stale by the upgrade (:func:`find_stale` takes it only where no knob in
    use is animated: it holds an expression's text, not the value it gave, and keys read at the
    frame Compute was pressed at).
    """
    if legacy:
        names = [n for n in SETTING_KNOBS if n not in NEWER_SETTING_KNOBS or n in settings_in_use(node, frame)]
    else:
        names = settings_in_use(node, frame)
    values = dict((name, node[name].toScript()) for name in names)
    if not legacy:
        at = nuke.frame() if frame is None else frame
        for name in animated_settings(node, frame):
            values[name] = [values[name], node[name].getValueAt(at)]
        values["weights"] = weights_value(node)
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def input_hashes(node, frames):
    """``{frame: hash}`` of Nuke's op hashes of the plate and trimap inputs at each frame.

    Moves the current frame (``nuke.frame``) to each frame and back. An input that is not
    connected hashes as ``"-"``. Only op hashes: cheap, no pixel is computed.
    """
    plate, trimap = node.input(PLATE_INPUT), node.input(TRIMAP_INPUT)
    now = nuke.frame()
    hashes = {}
    try:
        for frame in frames:
            if int(frame) != nuke.frame():
                nuke.frame(int(frame))
            parts = [",".join(str(h) for h in n.opHashes()) if n is not None else "-" for n in (plate, trimap)]
            hashes[int(frame)] = hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:16]
    finally:
        if nuke.frame() != now:
            nuke.frame(now)
    return hashes


#: The Root's knobs (Project Settings) that make up the proxy context Nuke builds ops for in proxy
#: mode; those a script's Root lacks (another Nuke version) are left out.
PROXY_KNOBS = ("proxy_type", "proxy_scale", "proxy_format", "proxySetting")


def proxy_settings():
    """``None`` at full resolution (proxy mode off), else ``{knob: value as saved}`` of
    :data:`PROXY_KNOBS`: what Nuke's op hashes depend on in proxy mode besides the inputs (every op
    is built for the proxy context, and its hash holds that context)."""
    root = nuke.root()
    if not root["proxy"].value():
        return None
    return dict((name, root.knob(name).toScript()) for name in PROXY_KNOBS if root.knob(name) is not None)


def _describe_proxy(settings):
    """``proxy scale 0.5`` or ``proxy format <format>`` of :func:`proxy_settings`."""
    if settings.get("proxy_type") == "format":
        return "proxy format %s" % settings.get("proxy_format", "?")
    return "proxy scale %s" % settings.get("proxy_scale", "?")


def proxy_input_hashes(node, frames):
    """``(proxy_settings(), input_hashes(node, frames))`` as Nuke's op hashes read in proxy mode at
    the script's proxy settings: proxy mode is turned on for the reading, and off again. Compute
    runs at full resolution; these let the stale check compare when the artist works in proxy
    mode, where every op hash differs from full resolution's."""
    knob = nuke.root()["proxy"]
    if knob.value():
        return proxy_settings(), input_hashes(node, frames)
    knob.setValue(True)
    try:
        return proxy_settings(), input_hashes(node, frames)
    finally:
        knob.setValue(False)


def record_inputs(node, hashes, settings, views=None, bundle=None, proxy=None):
    """Store what the result is made from in ``result_inputs`` (saved with the script).

    ``hashes`` is :func:`input_hashes`, ``settings`` :func:`settings_hash` and ``views`` the
    script's views (``nuke.views()``; default now), all taken when Compute started (a knob turned
    while it ran makes the result stale, as it should). ``bundle``: the weights bundle's folder
    and its ``manifest.json``'s SHA-256 as Compute keyed them (the knob holds only a name: a new
    fine-tune saved over the bundle keeps it). ``proxy``: :func:`proxy_input_hashes`, the inputs'
    op hashes in proxy mode (the stale check's in proxy mode)."""
    record = {"settings": settings, "frames": dict((str(f), hashes[f]) for f in sorted(hashes)),
              "views": list(nuke.views() if views is None else views)}
    if bundle is not None:
        record["bundle"] = {"path": bundle[0], "sha256": bundle[1]}
    if proxy is not None:
        record["proxy"] = {"settings": proxy[0], "frames": dict((str(f), proxy[1][f]) for f in sorted(proxy[1]))}
    node["result_inputs"].setValue(json.dumps(record, sort_keys=True))


#: ``{manifest path: (its stat, its SHA-256)}``: the idle check stats a bundle's manifest on each
#: tick and hashes it again only when the file changed.
_manifest_hashes = {}


def _manifest_sha256(folder, stats=None):
    """SHA-256 of ``folder``'s ``manifest.json`` as it is now, or ``None`` when it cannot be read
    (the folder of another machine, or a bundle removed: nothing to compare with).

    ``stats``: ``{path: stat}`` of an idle pass (:func:`check_current_frame`): the manifest is
    stat-ed once for all the nodes of the pass that use its bundle (on a show's share each stat
    may cross the network), not once per node."""
    path = os.path.join(folder, bundles.MANIFEST)
    try:
        if stats is None or path not in stats:
            info = os.stat(path)
            if stats is not None:
                stats[path] = info
        else:
            info = stats[path]
        stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
        known = _manifest_hashes.get(path)
        if known is None or known[0] != stamp:
            known = _manifest_hashes[path] = (stamp, bundles.file_sha256(path))
    except (OSError, IOError):
        return None
    return known[1]


#: ``{lbsmatte.json path: (its stat, {"path", "sha256"} or None)}``: the bundle a result folder's
#: record names (:func:`_folder_bundle`), read again only when the file changed.
_folder_bundles = {}


def _folder_bundle(node):
    """The weights bundle's folder and manifest SHA-256 (``{"path", "sha256"}``) that the cache
    folder of the result shown records in its ``lbsmatte.json`` (``bundle_path``, and
    ``settings.bundle_sha256``, written by every LBSMatte that recorded ``result_inputs``), or
    ``None`` (no such file, or the record of another key)."""
    folder = shown_folder(node)
    path = os.path.join(folder, cache.RECORD_NAME)
    try:
        info = os.stat(path) if folder else None
    except (OSError, IOError):
        info = None
    if info is None:
        return None
    stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
    known = _folder_bundles.get(path)
    if known is None or known[0] != stamp:
        record = cache.read_record(folder)
        settings = record.get("settings")
        where = record.get("bundle_path")
        sha = settings.get("bundle_sha256") if isinstance(settings, dict) else None
        found = None
        if isinstance(where, str) and isinstance(sha, str) and record.get("key") == os.path.basename(folder):
            found = {"path": where, "sha256": sha}
        known = _folder_bundles[path] = (stamp, found)
    return known[1]


def bundle_replaced(node, record, stats=None):
    """The bundle folder the result of ``node`` was computed with (``record``, :func:`recorded_inputs`)
    when its ``manifest.json`` now holds other weights (a fine-tune saved over it with
    ``--overwrite``, another release's bundle copied in), else ``""``. A *weights* knob naming a
    folder is read as Compute reads it, from the script's folder when relative: a script saved
    elsewhere may name another bundle with the same text. A bundle name is not looked up (that
    scans the bundle folders): the folder Compute found it in is read. A record an older
    LBSMatte wrote holds no bundle: the result's cache folder records it (:func:`_folder_bundle`).
    ``stats``: see :func:`_manifest_sha256`."""
    bundle = record.get("bundle") if "bundle" in record else _folder_bundle(node)
    if not isinstance(bundle, dict) or not isinstance(bundle.get("path"), str):
        return ""
    folder = local_path(bundle["path"])  # recorded where Compute ran: maybe another system's path
    text = weights_folder_text(node)
    if bundles.names_folder(text):
        folder = os.path.abspath(bundles.knob_folder(text, script_folder()))
    now = _manifest_sha256(folder, stats)
    return folder if now is not None and now != bundle.get("sha256") else ""


def recorded_inputs(node):
    """The ``result_inputs`` record as a dict (empty when none or unreadable)."""
    try:
        record = json.loads(node["result_inputs"].value() or "{}")
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def find_stale(node, frames=None, here_only=False, stats=None):
    """Why the result shown is stale, and for which frames: ``(reason, [frames])``.

    ``("", [])`` when the node shows no result, or the result matches its inputs and settings.
    ``frames`` limits the check (default: every frame of the result). ``here_only``: the inputs'
    op hashes are compared at the current frame only (the GUI's idle check must not move Nuke's
    frame); the other reasons hold at every frame of ``frames``. ``stats``: see :func:`_manifest_sha256`.
    """
    if not node["result_ready"].value():
        return "", []
    first, last = int(node["result_first"].value()), int(node["result_last"].value())
    every = list(range(first, last + 1))  # these reasons hold for every frame, checked or not
    record = recorded_inputs(node)
    stored = record.get("frames")
    if not isinstance(stored, dict) or not stored:
        return "no record of the inputs it was made from (computed by an older LBSMatte)", every
    if record.get("settings") != settings_hash(node, frame=first):
        if record.get("settings") != settings_hash(node, legacy=True):
            return "settings changed since Compute", every
        # The record of an older LBSMatte hashed each knob's script: an expression's text, not the
        # value it gave at Compute (a knob linked to another reads the same when that one changed),
        # and keyframes read at whatever frame Compute was pressed at, not at the range's first.
        animated = [node[name].label() or name for name in animated_settings(node, first)]
        if animated:
            return ("the %s knob%s keyframes or an expression, whose value at Compute an older LBSMatte did not "
                    "record" % (", ".join(animated), "s have" if len(animated) > 1 else " has")), every
    replaced = bundle_replaced(node, record, stats)
    if replaced:
        return "weights changed since Compute (bundle %s)" % replaced, every
    if node.input(PLATE_INPUT) is None or node.input(TRIMAP_INPUT) is None:
        return "an input is disconnected", every
    # The result is one view, checked at Compute to hold for each of the script's views then: a
    # view set up since (a stereo EXR's right eye, a mono script made stereo) was never compared.
    views = record.get("views")
    if views is not None and views != list(nuke.views()):
        return "the script's views changed since Compute (%s, now %s)" % (
            ", ".join(views), ", ".join(nuke.views())), every
    wanted = [f for f in (every if frames is None else frames) if first <= f <= last]
    if not wanted:
        return "", []
    # Compute made every frame with the value at the first (it refuses values that vary): a knob
    # keyed since, or linked to one keyed since, may differ at a later frame only.
    animated = [node[name] for name in animated_settings(node, first)]
    varied = [f for f in wanted if any(k.getValueAt(f) != k.getValueAt(first) for k in animated)]
    if varied:
        return "settings changed since Compute", varied
    if here_only:
        wanted = [f for f in wanted if f == nuke.frame()]
    proxy = proxy_settings()
    if proxy is not None and wanted:
        # In proxy mode every op hash holds the proxy context: compare with those Compute read in
        # proxy mode, at these proxy settings (full resolution's differ whatever the inputs).
        recorded = record.get("proxy")
        if not isinstance(recorded, dict) or not isinstance(recorded.get("frames"), dict):
            return ("proxy mode is on, and Compute recorded the inputs at full resolution only (an older "
                    "LBSMatte): turn proxy mode off to check them"), wanted
        if recorded.get("settings") != proxy:
            return ("proxy mode is on at %s, where Compute did not record the inputs (it did at %s): turn proxy "
                    "mode off, or set the proxy settings back, to check them"
                    % (_describe_proxy(proxy), _describe_proxy(recorded.get("settings") or {}))), wanted
        stored = recorded["frames"]
    current = input_hashes(node, wanted)
    changed = [f for f in wanted if stored.get(str(f)) != current[f]]
    return ("plate or trimap changed since Compute" if changed else ""), changed


def missing_result(node, frame):
    """Why ``node`` has nothing to render at ``frame`` ("" when it has): never computed, its cache
    cleared or its last Compute failed, a frame outside the computed range, or a frame of the range
    whose result file is not there (a Compute that failed or was cancelled at that frame). Its
    internal Read would give black, or a Read error naming only its own file."""
    if not node["result_ready"].value():
        return ("%s has no result to render (never computed, its cache cleared, or its last Compute "
                "failed)" % node.fullName())
    first, last = int(node["result_first"].value()), int(node["result_last"].value())
    if not first <= frame <= last:
        return "%s: frame %d is outside its computed range %d-%d" % (node.fullName(), frame, first, last)
    return missing_file(node, frame)


def missing_file(node, frame):
    """Why the result file of ``frame``, a frame of ``node``'s computed range, is not there (a Compute
    that failed or was cancelled at that frame), or ``""`` (outside the range too: the internal Read
    gives black there): the internal Read fails there."""
    first, last = int(node["result_first"].value()), int(node["result_last"].value())
    if not node["result_ready"].value() or not first <= frame <= last:
        return ""
    pattern = local_path(node["result_file"].value())  # as the internal Read opens it
    if pattern and not os.path.isfile(cache.frame_path(pattern, frame)):
        return ("%s: frame %d has no result (the last Compute failed or was cancelled there, or the file was "
                "deleted)" % (node.fullName(), frame))
    return ""


def frame_ranges(frames):
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    return ", ".join(("%d" % a) if a == b else ("%d-%d" % (a, b)) for a, b in cache.contiguous_runs(frames))


def show_staleness(node, reason, frames):
    """Make a stale result unmistakable (or the result current again when ``reason`` is empty).

    Stale: the status line says so and, unless *accept stale result* is on, the internal Read
    is pointed at :data:`STALE_MARK` so that the viewer shows Nuke's red error instead of the old
    matte and a render through the node fails. Returns the status text when stale.
    """
    shown, trimap = node["result_file"].value(), node["trimap_file"].value()
    if not reason:
        if node["result_stale"].value() and not node["result_ready"].value():
            # Nothing is shown (a Compute hid the stale result: it runs, failed or was cancelled):
            # no longer stale, but the status line keeps what that Compute says.
            node["result_stale"].setValue(False)
            node["result_shown"].setValue(shown)
            _set_if_changed(node["trimap_shown"], trimap)
        elif node["result_stale"].value():
            node["result_stale"].setValue(False)
            node["result_shown"].setValue(shown)
            _set_if_changed(node["trimap_shown"], trimap)
            set_status(node, "inputs match the Compute again (key %s)" % node["result_key"].value())
        elif node["trimap_shown"].value() != trimap:  # a script saved before the knob existed
            node["trimap_shown"].setValue(trimap)
        return ""
    text = "%s: %s at frame(s) %s" % (node.name(), reason, frame_ranges(frames))
    accepted = bool(node["accept_stale"].value())
    # Written only when they change: this runs on every idle tick while the result is stale, and
    # each write of a knob the internal Reads follow would make Nuke reload and redraw them.
    _set_if_changed(node["result_stale"], True)
    _set_if_changed(node["result_shown"], shown if accepted else STALE_MARK % text)
    # The trimap the stale result was made with is stale too (show trimap): the same red error.
    _set_if_changed(node["trimap_shown"], trimap if accepted else STALE_MARK % text)
    _set_if_changed(node["status"], ("STALE (accepted): %s" if accepted else "STALE: %s - press Compute") % text)
    return text


def _set_if_changed(knob, value):
    if knob.value() != value:
        knob.setValue(value)


def check_current_frame(node, frames=None, stats=None):
    """The viewer's check at ``frames``, the frames of the node the viewers show (default: the
    current frame). No frame is moved: the inputs' op hashes are compared at the current frame
    only, should it be one of them (see :func:`find_stale`). ``stats``: the idle pass's
    (:func:`_manifest_sha256`)."""
    reason, stale = find_stale(node, [nuke.frame()] if frames is None else list(frames), here_only=True,
                               stats=stats)
    show_staleness(node, reason, stale)


# -- baking ------------------------------------------------------------------------------------
def bake(node, folder, first, last, trimap_channel="auto", trimap_from=""):
    """:func:`_bake`, marked as LBSMatte's own render (the stale-render check lets it through)."""
    _baking.append(node)
    try:
        return _bake(node, folder, first, last, trimap_channel, trimap_from)
    finally:
        _baking.remove(node)


def baking():
    """Whether an LBSMatte node is baking its inputs now (:func:`bake`): the renders of its
    temporary Writes, which the stale-render check (``callbacks.before_frame_render``) lets through."""
    return bool(_baking)


def _bake(node, folder, first, last, trimap_channel="auto", trimap_from=""):
    """Render plate and trimap to EXR sequences in ``folder`` with temporary Write nodes.

    ``trimap_from``: a channel of the trimap input in any layer (the *trimap from* knob, ``mask.a``),
    copied into the trimap's ``rgba.alpha`` by a temporary ``Copy`` before its Write (the core reads
    the trimap's alpha then); ``""``: the trimap input's ``rgba`` as it is, read as ``trimap_channel``.

    The plate is written as RGB in 32-bit float, the trimap as RGBA when it has an alpha channel
    (else RGB, so that ``auto`` never picks an empty alpha) in half float, both ``raw`` (the
    working-space values as they are: scene-linear in a default Nuke set-up), metadata kept except
    ``input/*`` (which holds file times and would change the inputs' hash without changing their
    pixels). The plate is float so that the core gets its values as they are and applies its own
    rules to them, as it does to a plate read from disk: a highlight beyond half float's 65504
    would be baked as inf, which the core can only sanitise as a broken pixel (to the frame's
    largest finite value), where it keeps the value in the known regions, clamps it to ±1e16 for
    the refinement and writes it as ±65504 in its half-float result with a warning.

    Returns
    -------
    (str, str, dict)
        The plate and trimap patterns (``.../plate.####.exr``), and ``{frame: message}`` for the
        frames Nuke could not render (they are not baked; the others are).

    Raises
    ------
    NodeError
        An input is missing or Nuke could not render it (the message says which).
    KeyboardInterrupt
        The user cancelled Nuke's render.
    """
    plate = input_node(node, PLATE_INPUT)
    trimap = input_node(node, TRIMAP_INPUT)
    has_alpha = bool(trimap_from) or "rgba.alpha" in trimap.channels()
    if trimap_channel == "alpha" and not has_alpha:
        raise NodeError("%s: trimap channel is 'alpha' but the trimap input (%s) has no alpha channel: set trimap "
                        "channel to auto or red, or give the trimap an alpha" % (node.name(), trimap.name()))
    check_input_channels(node, plate, trimap, trimap_channel, trimap_from)
    jobs = (
        ("plate", plate, "rgb", PLATE_DATATYPE, None),
        ("trimap", trimap, "rgba" if has_alpha else "rgb", "16 bit half", trimap_from or None),  # 0, 0.5, 1 exactly
    )
    views = nuke.views()
    patterns = []
    failed = {}
    with node.parent():
        for label, source, channels, datatype, copy_from in jobs:
            pattern = _bake_pattern(folder, label)
            # A script of several views (stereo): the first view, into a file of one view (without
            # views Nuke renders them all into one multi-view EXR, whose first view the core mattes)
            _bake_input(node, source, label, pattern, channels, datatype, first, last, failed,
                        views[:1] if len(views) > 1 else None, copy_from)
            _check_some_baked(node, first, last, failed)
            patterns.append(pattern)
        for view in views[1:]:
            for index, (label, source, channels, datatype, copy_from) in enumerate(jobs):
                _check_same_view(node, folder, source, label, patterns[index], channels, datatype, first, last,
                                 failed, views[0], view, copy_from)
                _check_some_baked(node, first, last, failed)
    return patterns[0], patterns[1], failed


#: The channels the bake Writes take from each input (a Write writes a channel its input lacks as black).
_RGB = ("rgba.red", "rgba.green", "rgba.blue")


def check_input_channels(node, plate, trimap, trimap_channel, trimap_from=""):
    """:class:`NodeError` when an input has none of the channels the bake takes from it: a plate
    with no red, green or blue (a Roto or a trimap wired into the plate input), or a trimap whose
    channels are all in another layer than ``rgba`` (a ``mask`` or ``trimap`` layer) or lack the
    one *trimap channel* names, or the channel *trimap from* picks (``trimap_from``). The bake Writes
    would write black for them, and the core would matte a black plate, or a trimap all background,
    with no word of why. An input whose channels Nuke cannot tell (``channels()`` empty: an upstream
    error) is left to the bake, which names it."""
    plate_channels, trimap_channels = plate.channels(), trimap.channels()
    if plate_channels and not any(c in plate_channels for c in _RGB):
        raise NodeError("%s: the plate input (%s) has no red, green or blue channel (its channels: %s): there is "
                        "no picture to matte. Is a matte or the trimap wired into the plate input (input 0)? Connect "
                        "the plate there, or Shuffle its colour into rgba"
                        % (node.name(), plate.name(), ", ".join(plate_channels)))
    if not trimap_channels:
        return
    if trimap_from:
        if trimap_from not in trimap_channels:
            raise NodeError("%s: trimap from is '%s', but the trimap input (%s) has no such channel (its channels: "
                            "%s): the trimap would be read as black, all background. Pick one of its channels, or "
                            "none to read rgba as trimap channel says"
                            % (node.name(), trimap_from, trimap.name(), ", ".join(trimap_channels)))
        return
    has_alpha, has_red = "rgba.alpha" in trimap_channels, "rgba.red" in trimap_channels
    if trimap_channel == "auto":
        missing = not has_alpha and not any(c in trimap_channels for c in _RGB)
        reads = "rgba.alpha, or rgba.red, green and blue"
    elif trimap_channel in ("red", "luminance"):
        missing = not has_red
        reads = "rgba.red" if trimap_channel == "red" else "rgba.red, green and blue"
    else:
        return  # 'alpha': checked by the caller
    if not missing:
        return
    if has_alpha:
        way = "set trimap channel to alpha (or auto)"
    else:
        others = [c for c in trimap_channels if not c.startswith("rgba.")]
        way = "Set trimap from (next to trimap channel) to the channel that holds the trimap (one of %s)" \
              % ", ".join(others or trimap_channels)
    raise NodeError("%s: trimap channel is '%s', which reads %s, but the trimap input (%s) has none of them (its "
                    "channels: %s): the trimap would be read as black, all background. %s"
                    % (node.name(), trimap_channel, reads, trimap.name(), ", ".join(trimap_channels), way))


def _check_some_baked(node, first, last, failed):
    """Nothing of the range baked (``failed`` holds every frame): the whole Compute fails."""
    if len(failed) == last - first + 1:
        frame = min(failed)
        raise NodeError("%s: no frame of %d-%d could be baked; frame %d: %s"
                        % (node.name(), first, last, frame, failed[frame]))


#: Text knob of a bake Write holding its file pattern as it is (its ``file`` knob reads it with ``[value]``).
BAKE_FILE_KNOB = "lbsmatte_file"


def _bake_pattern(folder, label):
    return (folder.rstrip("/\\") + "/%s.####.exr" % label).replace("\\", "/")


def _bake_input(node, source, label, pattern, channels, datatype, first, last, failed, views=None, copy_from=None):
    """Render ``source`` to the EXR sequence ``pattern`` with a temporary Write (``views``: those
    views only; default every view of the script), frame by frame (see :func:`_execute_frames`).
    ``copy_from``: a channel of ``source`` that a temporary Copy puts into ``rgba.alpha`` first."""
    # nuke.nodes, not createNode: no auto-connection, no change to the user's selection
    write = nuke.nodes.Write()
    copy = None
    try:
        if copy_from:
            # Copy, not Shuffle: its from0/to0 knobs are the same in every Nuke (Shuffle's changed in 12.1).
            # Both inputs are the trimap input: B gives the picture, A the channel put into its alpha.
            copy = nuke.nodes.Copy()
            copy.setInput(0, source)
            copy.setInput(1, source)
            copy["from0"].setValue(copy_from)
            copy["to0"].setValue("rgba.alpha")
        write.setInput(0, copy if copy is not None else source)
        # Nuke evaluates the file knob as TCL: a folder named 'Shot [v2]' would run the command v2 and
        # 'proj$1' read a variable. The pattern is kept in a text knob and the file knob reads it with
        # [value], whose result TCL takes as it is (as the gizmo's Reads read result_shown).
        write.addKnob(nuke.String_Knob(BAKE_FILE_KNOB))
        write[BAKE_FILE_KNOB].setValue(pattern)
        write["file"].setValue("[value %s]" % BAKE_FILE_KNOB)
        write["file_type"].setValue("exr")
        # Lossless whatever the studio's knob default: DWAA/DWAB (or B44 on half) would bake a plate
        # that is not the plate, off by a few percent, and the matte with it.
        write["compression"].setValue(BAKE_COMPRESSION)
        write["channels"].setValue(channels)
        write["datatype"].setValue(datatype)
        write["metadata"].setValue("all metadata except input/*")
        write["raw"].setValue(True)
        for name, value in BAKE_WRITE_KNOBS:
            if write.knob(name) is not None:  # autocrop: an EXR Write's
                write[name].setValue(value)
        settings = dict((name, write[name].value()) for name in _checked_knobs(write))
        _execute_frames(write, first, last, failed, "%s (%s)" % (label, source.name()), views,
                        check=lambda frame: _check_bake_write(node, write, label, pattern, frame, settings))
    except RuntimeError as exc:
        if "cancel" in str(exc).lower():
            raise KeyboardInterrupt("cancelled while baking the %s" % label) from exc
        raise NodeError("%s: could not bake the %s (%s) for frames %d-%d: %s"
                        % (node.name(), label, source.name(), first, last, exc)) from exc
    finally:
        nuke.delete(write)
        if copy is not None:
            nuke.delete(copy)


#: Header attributes that name the view a file holds, not its picture (left out when the views' bakes are compared).
VIEW_ATTRIBUTES = ("view", "multiView")


def _check_same_view(node, folder, source, label, pattern, channels, datatype, first, last, failed, main, view,
                     copy_from=None):
    """:class:`NodeError` when ``source`` differs in ``view`` from ``main`` (the view baked) at a frame
    of ``first``-``last``: one Compute mattes one view, and its result, a file of one view, is what
    Nuke's Read shows in every view (``main``'s matte on ``view``). Inputs the same in every view
    (a OneView node above them, a mono plate in a stereo script) are matted once for all of them."""
    other = _bake_pattern(folder, "%s_view_%s" % (label, view))
    _bake_input(node, source, "%s, view %s" % (label, view), other, channels, datatype, first, last, failed, [view],
                copy_from)
    for frame in range(first, last + 1):
        if frame in failed:
            continue
        a, b = cache.frame_path(pattern, frame), cache.frame_path(other, frame)
        if exr.content_sha256(a, ignore=VIEW_ATTRIBUTES) != exr.content_sha256(b, ignore=VIEW_ATTRIBUTES):
            raise NodeError(
                "%s: the %s input (%s) differs between the script's views %s and %s (frame %d), and one LBSMatte "
                "node mattes one view: its result would show %s's matte in every view. Give each view its own "
                "LBSMatte node, with a OneView node (view %s, view %s, ...) above its plate and trimap, and join "
                "their results with a JoinViews node" % (node.name(), label, source.name(), main, view, frame,
                                                         main, main, view))


def _execute_frames(write, first, last, failed, what, views=None, check=None):
    """Render ``write`` frame by frame, as the CLI mattes a sequence (SPEC §8): a frame Nuke cannot
    render (a missing or damaged file upstream) is recorded in ``failed`` (``{frame: message}``)
    and the others still bake. A cancel still stops everything. ``views``: those views only.
    ``check(frame)``, after each frame rendered, raises :class:`NodeError` to stop the bake."""
    for frame in range(first, last + 1):
        if frame in failed:  # the plate failed there already: no trimap is needed
            continue
        try:
            if views is None:
                nuke.execute(write, frame, frame, 1)
            else:
                nuke.execute(write, frame, frame, 1, views)
        except RuntimeError as exc:
            if "cancel" in str(exc).lower():
                raise
            failed[frame] = "could not bake the %s: %s" % (what, exc)
            continue
        if check is not None:
            check(frame)


def _checked_knobs(write):
    """The knobs of a bake Write that :func:`_bake_input` sets (those the Write has)."""
    names = [BAKE_FILE_KNOB, "file", "file_type", "compression", "channels", "datatype", "metadata", "raw"]
    return names + [name for name, _ in BAKE_WRITE_KNOBS if write.knob(name) is not None]


def _check_bake_write(node, write, label, pattern, frame, settings):
    """:class:`NodeError` when a studio's callback changed a knob of the bake Write ``settings`` holds
    (a naming-convention hook rewriting every Write's file, say: the bake went elsewhere, and the core
    would matte no plate, or an earlier one), or moved or deleted the frame it rendered (a publish
    hook). Neither can be kept from the bake: Nuke runs such callbacks for every Write."""
    for name, value in sorted(settings.items()):
        now = write[name].value()
        if now != value:
            raise NodeError(
                "%s: while the %s was baked, the %s knob of the bake Write was changed from %r to %r by a "
                "studio callback (%s). Make that callback skip LBSMatte's bake Writes: they have a knob named "
                "%s" % (node.name(), label, name, value, now, STUDIO_CALLBACKS, BAKE_FILE_KNOB))
    path = cache.frame_path(pattern, frame)
    if not os.path.isfile(path):
        raise NodeError(
            "%s: the bake Write rendered frame %d of the %s, but %s is not there after the render: Nuke did not "
            "write it, or a studio callback moved or deleted it (%s). Make such a callback skip LBSMatte's bake "
            "Writes: they have a knob named %s" % (node.name(), frame, label, path, STUDIO_CALLBACKS, BAKE_FILE_KNOB))


# -- the result and the status line -------------------------------------------------------------
def result_read(node):
    """The internal Read node (``Result``)."""
    read = node.node(RESULT_READ)
    if read is None:
        raise NodeError("%s: the internal Read '%s' is missing (is gizmos/LBSMatte.gizmo current?)"
                        % (node.name(), RESULT_READ))
    return read


def show_result(node, folder, first, last, key):
    """Point the internal Read at ``folder``'s sequence and reload it (the result is current)."""
    node["result_file"].setValue(cache.result_pattern(folder))
    node["trimap_file"].setValue(cache.trimap_pattern(folder))
    node["trimap_shown"].setValue(cache.trimap_pattern(folder))
    node["result_shown"].setValue(cache.result_pattern(folder))
    node["result_stale"].setValue(False)
    node["result_first"].setValue(int(first))
    node["result_last"].setValue(int(last))
    node["result_key"].setValue(key)
    node["result_ready"].setValue(True)
    result_read(node)["reload"].execute()
    trimap = node.node(TRIMAP_READ)
    if trimap is not None:  # an older LBSMatte.gizmo on the plugin path has none
        trimap["reload"].execute()


def hide_result(node):
    """Switch the internal Read off (the node shows black, never a stale frame)."""
    node["result_ready"].setValue(False)


def forget_result(node):
    """Switch the internal Read off and clear where it pointed."""
    hide_result(node)
    node["result_file"].setValue("")
    node["trimap_file"].setValue("")
    node["trimap_shown"].setValue("")
    node["result_shown"].setValue("")
    node["result_key"].setValue("")
    node["result_inputs"].setValue("")
    node["result_stale"].setValue(False)


def shown_key(node):
    """Key of the result the Read shows, or ``""`` when it shows none."""
    return node["result_key"].value() if node["result_ready"].value() else ""


def shown_folder(node):
    """Folder of the result the Read shows (also when switched off), or ``""``."""
    pattern = local_path(node["result_file"].value())  # as the internal Read opens it
    return os.path.dirname(pattern) if pattern else ""


def set_status(node, text):
    """The read-only status line."""
    node["status"].setValue(text)


# -- weights -----------------------------------------------------------------------------------
def show_weights_value(node):
    """The weights menu holds only the current value: no file system scan, no subprocess (for
    script load and renders; the full list is filled when the panel opens)."""
    current = weights_value(node)
    menu = node["weights_list"]
    menu.setValues([current])
    menu.setValue(current)


def refresh_weights_list(node):
    """Fill the weights menu with every bundle found, ``default`` first; select the current one.

    Scans the bundle folders (and may ask the core's Python where ``core`` is): only when the
    panel opens or the weights change, never at script load or render.
    A value that is not a bundle name (a folder, or a bundle missing here) is listed too, so
    the menu always shows what the node will use.
    """
    names = [b.name for b in bundles.find_bundles()]
    if bundles.DEFAULT_NAME in names:
        names.remove(bundles.DEFAULT_NAME)
    names.insert(0, bundles.DEFAULT_NAME)
    current = weights_value(node)
    if current not in names:
        names.append(current)
    menu = node["weights_list"]
    menu.setValues(names)
    menu.setValue(current)
    return names


def set_weights(node, value):
    """Set the ``weights`` knob (a name or a folder) and the menu beside it."""
    node["weights"].setValue(value)
    refresh_weights_list(node)


def weights_list_chosen(node):
    """The user picked an entry of the weights menu: copy it to ``weights``."""
    chosen = node["weights_list"].value()
    if chosen and chosen != weights_value(node):
        node["weights"].setValue(chosen)
        return True
    return False
