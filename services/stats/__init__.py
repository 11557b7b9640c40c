"""Anonymised sick-leave statistics: pseudonymised facts, sjukfall, reports protected by the cell key method."""
