"""Labelling: the label store, exporting labels as dataset versions, and ranking."""
