"""The five services of Mina intyg and their shared plumbing (`kit`)."""
