"""Multi-view (stereo) EXR files: which view of a plate and of a trimap is matted.

A Nuke stereo script writes its views into one EXR: one part whose ``multiView`` attribute names
them (the default view's channels unprefixed, ``R``; the others' prefixed, ``right.R``), or a part
per view (``interleave`` 'channels and layers'), each naming its ``view``. LBSMatte mattes one
view per run (:func:`choose_views`, said as a warning) and does not fill in Nuke's view variables
``%V``/``%v`` in a path (:func:`check_no_view_variable`). Plain functions over
:class:`core.io.Image`; ``core.cli`` maps its flags onto them.
"""

from __future__ import annotations

import logging
import os
import re
from typing import TYPE_CHECKING

import numpy as np

from core.errors import InputError

if TYPE_CHECKING:
    from core.io import Image

log = logging.getLogger(__name__)


def check_no_view_variable(flag: str, path: str) -> None:
    """:class:`InputError` when ``path`` holds Nuke's view variable ``%V`` (the view's name) or ``%v``
    (its first letter), which a Read or Write of a stereo script fills in and lbsmatte does not."""
    view = re.search(r"%[Vv]", path)
    if view:
        raise InputError(
            f"{flag} {path} holds {view.group(0)}, Nuke's view variable (%V the view's name, %v its first "
            "letter), which lbsmatte does not fill in: it mattes one view per run. Run it once per view, the "
            f"view named in each path ({flag} {path.replace('%V', 'left').replace('%v', 'l')}, then right)")


def file_views(image: Image) -> tuple[list[str], str | None]:
    """The views of a multi-view EXR, and the view of the part read when it holds a part per view.

    One part (Nuke's Write of several views into one file, by default): its ``multiView`` attribute
    lists the views, the first the default one, whose channels OpenEXR stores without the view's
    name (``R``), the others' with it (``right.R``); a ``multiView`` naming views without channels
    here (an attribute carried over from another file) makes no view. A part per view (Nuke's
    ``interleave`` 'channels and layers'): the part read, its first, names its ``view``.
    ``([], None)`` for a file of one view."""
    info = image.info
    views = info.attribute("multiView")
    views = [str(v) for v in ((views,) if isinstance(views, str) else views or ())]
    part = info.attribute("view")
    if isinstance(part, str) and part and (info.attribute("oiio:subimages") or 1) > 1 and (
            info.attribute("oiio:subimagename") == part or len(views) > 1):  # not a part per layer of one view (rgba.main)
        return (views if part in views else [part]), part
    if len(views) > 1 and any(c.partition(".")[0] in views[1:] for c in image.channels):
        return views, None
    return [], None


def split_view(views: list[str], name: str) -> tuple[str | None, str]:
    """``(view, the name within it)`` of a layer or channel name of a file of ``views``: ``right.A`` is
    ``A`` of ``right``, ``left.A`` (the default view) ``A`` of ``left``; ``(None, name)`` when it names
    no view."""
    head, _, rest = name.partition(".")
    return (head, rest) if head in views else (None, name)


def view_channels(image: Image, views: list[str], view: str) -> tuple[np.ndarray, list[str]]:
    """Pixels and channel names of ``view`` of a multi-view image, without the view's name."""
    if view == views[0]:
        keep = [i for i, c in enumerate(image.channels) if c.partition(".")[0] not in views[1:]]
        names = [image.channels[i] for i in keep]
    else:
        keep = [i for i, c in enumerate(image.channels) if c.startswith(view + ".")]
        names = [image.channels[i][len(view) + 1:] for i in keep]
    return np.ascontiguousarray(image.pixels[..., keep]), names


def choose_views(plate: Image, trimap: Image, plate_layer: str | None, trimap_channel: str,
                 plate_path: str | os.PathLike[str], trimap_path: str | os.PathLike[str]
                 ) -> tuple[str | None, str, np.ndarray, list[str]]:
    """Which view of a multi-view EXR plate or trimap is matted, said as a warning (the result is one
    view: Nuke's Read of it shows that view's matte in every view of a stereo script).

    The plate's view is the one ``plate_layer`` (``--plate-layer``) names (``right``, ``right.beauty``),
    else its default view; a multi-view trimap is read in the plate's view unless ``trimap_channel``
    (``--trimap-channel``) names another (``right.A``), which is an :class:`InputError`: the matte of
    one eye with the trimap of the other.

    Parameters
    ----------
    plate, trimap:
        The plate and the trimap as read (:func:`core.io.read_image`, its first part).
    plate_layer, trimap_channel:
        The layer of the plate and the channel of the trimap asked for, as the user wrote them.
    plate_path, trimap_path:
        Their files, for the messages.

    Returns
    -------
    tuple
        The plate's layer to read (the view's name taken off where the view is the default one),
        the trimap channel (likewise), and the trimap's ``H×W×C`` pixels and their ``C`` channel
        names, of its view only and without the view's name, so that ``auto`` never reads another
        view's alpha. A file of one view gives the arguments and the trimap's own pixels back.
    """
    layer, channel = plate_layer, trimap_channel
    pixels, channels = trimap.pixels, trimap.channels
    (plate_views, plate_part), (trimap_views, trimap_part) = file_views(plate), file_views(trimap)
    plate_view = plate_part
    if plate_views and plate_part is None:
        plate_view, inside = split_view(plate_views, layer or "")
        if plate_view == plate_views[0]:
            layer = inside or None  # the default view's layers carry no view name: left is rgba
        plate_view = plate_view or plate_views[0]
    trimap_view = trimap_part
    if trimap_views and trimap_part is None:
        named, channel = split_view(trimap_views, channel)
        trimap_view = named or (plate_view if plate_view in trimap_views else trimap_views[0])
        if named and plate_view is not None and named != plate_view:
            raise InputError(
                f"plate {plate_path} is matted in its view {plate_view} but --trimap-channel {trimap_channel} "
                f"reads the trimap {trimap_path} in its view {named}: the matte of one view with the trimap of "
                f"another; give --trimap-channel {plate_view}.{channel} (or {channel}: the plate's view)")
        pixels, channels = view_channels(trimap, trimap_views, trimap_view)
    elif trimap_part is not None and plate_view is not None and trimap_part != plate_view:
        raise InputError(
            f"plate {plate_path} is matted in its view {plate_view} but the trimap {trimap_path} holds a part per "
            f"view and its first, {trimap_part}, is read: the matte of one view with the trimap of another; write "
            f"the trimap of view {plate_view} to a file of its own")
    parts = " (a part per view: its first is read)"
    if plate_views:
        other = next((v for v in plate_views if v != plate_view), None)
        log.warning("plate %s is a multi-view EXR (views %s)%s: its view %s is matted%s, and the result holds that "
                    "view only; matte each other view to an output of its own%s",
                    plate_path, ", ".join(plate_views), parts if plate_part else "", plate_view,
                    f" with the trimap's view {trimap_view}" if trimap_view else "",
                    " (write it to a file of its own)" if plate_part else f" (--plate-layer {other})")
    elif trimap_views:
        other = next((v for v in trimap_views if v != trimap_view), None)
        log.warning("trimap %s is a multi-view EXR (views %s)%s: its view %s is read for the plate %s, a file of one "
                    "view%s", trimap_path, ", ".join(trimap_views), parts if trimap_part else "", trimap_view,
                    plate_path, "" if trimap_part else f"; --trimap-channel names another view's channel (e.g. {other}.A)")
    return layer, channel, pixels, channels
