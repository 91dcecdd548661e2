"""Avro schemas of the waadi signals (a package only so that the files ship with sigex)."""
