"""Anonymised sick-leave statistics: pseudonymised facts, sjukfall, suppressed reports (issue #6; not built yet)."""
