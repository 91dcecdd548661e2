"""The access log for auditors: typed records, a Merkle log store, signed checkpoints, proofs.

One :class:`~sigex.exchange.access_record.AccessRecord` is written per decision per
data subject. The store appends records as leaves of an RFC 9162 Merkle tree
(SQLite or PostgreSQL), signs checkpoints of the tree and answers queries by
person (keyed pseudonym), party, purpose, agreement, signal, outcome and time.
Nothing here talks to Kafka; ``sigex.audit.indexer`` and ``sigex.audit.checkpoint_topic``
do.
"""

from __future__ import annotations
