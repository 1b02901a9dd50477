"""The five compaction stages, cheapest first; each takes the run's `RunContext` and returns the messages."""
