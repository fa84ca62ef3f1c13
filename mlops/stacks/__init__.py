"""Stacks compose constructs and wire references; stateful and stateless stacks are kept apart."""
