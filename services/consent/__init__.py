"""Consent (samtycke): the citizen's consent history, and the gate that releases certificates only while it is given."""
