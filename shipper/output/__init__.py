"""Output: line encoding with a bound, the sinks, the one writer, and the quarantine."""
