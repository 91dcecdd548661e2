"""Avro schemas of the laa signals (a package only so that the files ship with sigex)."""
