"""Tasks as users see them: strings in, labels out (tagging, classification)."""
