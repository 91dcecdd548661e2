"""The ``sigex`` command line, the top layer: one module per command group, on the libraries.

``sigex.cli.main`` assembles the groups; ``sigex.cli.options`` holds the options they share.
"""

from sigex.cli.main import main

__all__ = ["main"]
