"""Citizen portal: e-legitimation login, consent, and every certificate action in Swedish (issue #5; not built yet)."""
