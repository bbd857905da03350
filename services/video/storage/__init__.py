"""``video-storage``: the object store of the video platform (raw uploads on disk, renditions, segments)."""
