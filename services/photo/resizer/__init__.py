"""``photo-resizer``: makes the photo sizes (seed 003, "Instagram Photo Storage": ``createThumbnails``)."""
