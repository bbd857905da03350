"""``video-playback``: HLS master and variant playlists, and the view-start counter (docs/case-studies/video.md).

``hls`` (render and parse playlists) is pure and importable without the
service: the harness's player uses it. ``service`` holds the
``ServiceDefinition``.
"""
