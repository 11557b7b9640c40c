"""Försäkringskassan simulator: a real HTTP receiver of certificates, with faults injected on demand.

The dispatch service sends certificates here. The simulator stores what it received (with the sender's idempotency
key, in its own PostgreSQL schema, so counts survive restarts), answers "did you receive X?", lists what it
received, and can be told to fail in the ways a real recipient fails: errors, latency, timeouts, planned downtime,
and accepting a certificate while the answer is lost on the way back.
"""
