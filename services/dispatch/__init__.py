"""Dispatch: sends certificates to recipients such as Försäkringskassan exactly once (issue #4; not built yet)."""
