"""The Publisher library that partner systems use to send signals, and reference producers."""
