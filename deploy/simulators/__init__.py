"""Stand-ins for the outside world that speak the real protocols (HTTP, OIDC)."""
