"""The shared core of sigex: errors, identifiers, clock, logging and the command line."""

__version__ = "0.1.0"
