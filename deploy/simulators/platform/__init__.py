"""The national service platform: generates realistic certificates and pushes them to intake."""
