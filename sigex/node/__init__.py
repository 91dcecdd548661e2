"""The partner node: one party's local HTTP gateway onto the exchange.

A partner system in any language publishes and receives signals with plain
HTTP calls; the node holds the party's keys and does what the Python library
does (validate, decide, seal, publish; open, verify, receipt, commit). See
``docs/partner-node.md``.
"""
