"""Deployment: local infrastructure, simulators of the outside world, manifests."""
