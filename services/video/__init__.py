"""The video-platform case study (shared/seeds/004_718541f717f7b956.txt): upload plane and playback plane.

One sub-package per service: ``storage`` (object store and CDN origin),
``upload`` (upload API), ``transcode`` (work queue and workers), ``catalog``
(metadata, social graph, view counts, feed), ``search`` (inverted index),
``playback`` (HLS playlists, view buffer) and ``edge`` (CDN edge cache with the
WAN model). ``ladder`` is the rendition ladder they share. docs/case-studies/video.md
describes the mesh.
"""
