"""Vetted, versioned operations the worker runs."""
