"""Importer benchmarks (see BENCHMARKS.md)."""
