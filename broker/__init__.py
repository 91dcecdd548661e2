"""Everything that runs beside Kafka: the local broker, provisioning, the policy gateway and the audit indexer."""
