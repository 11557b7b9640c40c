"""Simulated e-legitimation identity provider: a standards-conforming OpenID Connect provider playing BankID.

The portal logs citizens in through it exactly as it would through a real e-legitimation provider: discovery, JWKS
(with key rotation), authorization code with PKCE, `nonce`, `acr` for the assurance level, and the Swedish
personnummer and name claims. Its "BankID (test)" page lets a person pick a test person or type a personnummer.
`/sim/` has the knobs the portal's security tests use (tampered ID tokens, key rotation, clearing state).
"""
