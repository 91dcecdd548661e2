"""The Subscriber library that partner systems use to receive signals, and reference consumers."""
