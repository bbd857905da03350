"""The photo-sharing case study (Instagram, seed 003): photo-media, photo-resizer and photo-feed."""
