"""``live-origin``: the live streams' parts and segments for their DVR window, LL-HLS playlists with blocking reload, and part watchers for the edges (:mod:`.store`, :mod:`.service`)."""
