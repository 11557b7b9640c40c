"""Plumbing every service shares: settings, logging, database, Kafka, outbox relay, idempotent consumer, HTTP."""
