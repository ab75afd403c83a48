"""Packaging: the lock of the Python environment and the images built from it."""
