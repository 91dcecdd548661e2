"""Avro schemas of the signals, their data classifications, the catalogue, compatibility."""
