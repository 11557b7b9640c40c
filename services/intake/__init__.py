"""Intake: receives certificates from the national platform, validates them and publishes them to Kafka."""
