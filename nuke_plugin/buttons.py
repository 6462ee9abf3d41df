"""What the gizmo's buttons call.

Each button script in ``LBSMatte.gizmo`` is one line calling a function here, inside a
``try``/``except`` that shows a message if even the import fails. Here, problems the user can
fix (:class:`NodeError`) become a short message; anything else a message with the traceback.
"""

import traceback

import nuke

from nuke_plugin import compute
from nuke_plugin import node as lbs_node
from nuke_plugin.errors import NodeError
from nuke_plugin.progress import PrintReporter, print_line


def _show(text):
    if nuke.GUI:
        nuke.message(text)
    else:
        print_line(text)


def _guard(action, node):
    try:
        return action(node)
    except NodeError as exc:
        lbs_node.set_status(node, "ERROR: %s" % str(exc).splitlines()[0])
        _show("LBSMatte: %s" % exc)
    except KeyboardInterrupt:
        lbs_node.set_status(node, "cancelled")
    except Exception as exc:
        # On the node too: its status line would go on saying what it said before ("ready", or
        # "computing ..."), as if nothing had gone wrong.
        first = (str(exc).splitlines() or [""])[0]
        lbs_node.set_status(node, "ERROR: %s%s (Troubleshoot checks the installation)"
                            % (type(exc).__name__, ": " + first if first else ""))
        _show("LBSMatte: unexpected error (Troubleshoot checks the installation):\n\n%s" % traceback.format_exc())
    return None


def compute_pressed(node):
    """*Compute*: in the GUI the matte is computed in the background with a progress bar."""
    if nuke.GUI:
        return _guard(compute.compute_in_background, node)
    return _guard(lambda n: compute.compute(n, reporter=PrintReporter()), node)


def clear_cache_pressed(node):
    """*Clear cache*: delete this node's results and switch its Read off."""
    return _guard(compute.clear_cache, node)


def troubleshoot_pressed(node):
    """*Troubleshoot*: check the installation and say what is wrong."""
    from nuke_plugin import troubleshoot

    def run(n):
        text = troubleshoot.troubleshoot_node(n)
        _show(text)
        return text

    return _guard(run, node)


def browse_weights_pressed(node):
    """*Browse...*: the weights panel (bundles with their manifests)."""
    from nuke_plugin import panel

    return _guard(panel.browse, node)
