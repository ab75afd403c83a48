"""Monitoring logic (pure): the drift reference profile and, later, streaming drift statistics."""
