"""Everything beside Kafka: the local broker, provisioning, the gateway, the audit indexer."""
