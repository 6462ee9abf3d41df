"""The one exception type of the Nuke layer."""


class NodeError(Exception):
    """A problem the user can fix (input not connected, bad range, folder not writable, ...).

    Its message is shown as is (``nuke.message`` in the GUI, an ``ERROR:`` line on the farm),
    without a traceback.
    """
