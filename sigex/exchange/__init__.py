"""The exchange's shared rules: wire protocol, routing, topics and ACLs, access events."""
