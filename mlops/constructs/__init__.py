"""Constructs: one logical unit each, keyword-only props, typed public attributes.

Imported as ``mlops.constructs`` so it never shadows the ``constructs`` library."""
