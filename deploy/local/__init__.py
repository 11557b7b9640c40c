"""Local infrastructure for development and tests: Apache Kafka (KRaft) and PostgreSQL on this machine."""
