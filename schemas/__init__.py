"""Shared contracts of Mina intyg: certificate models, event envelope and events, topic names.

Everything here is frozen and versioned: a published shape never changes incompatibly (see `compat.py`).
"""
