"""Labelled text data: parsing and validation, immutable content-addressed versions, stores."""
