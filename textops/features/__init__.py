"""Text → numeric features for the classifier (character n-grams by default)."""
