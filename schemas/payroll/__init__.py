"""Avro schemas of the payroll signals (a package only so that the files ship with sigex)."""
