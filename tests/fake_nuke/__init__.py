"""Test support for the Nuke layer: a strict fake ``nuke`` module (``nuke.py``, imported as the
top-level module ``nuke`` by putting this folder on ``sys.path``), the ``.nk``/``.gizmo`` parser
it and ``tests/test_gizmo.py`` share (``nkscript.py``), a stand-in ``core.cli`` written to the
CLI contract (``fake_core_cli.py``) and pytest fixtures (``fixtures.py``)."""
