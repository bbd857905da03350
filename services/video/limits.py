"""Size and range limits the video platform's services share, one constant each.

Several services check the same rule (the upload service at InitiateUpload,
the object store on every write; the upload service, the catalogue and the
transcode queue on a video's duration), so the numbers live here once and the
protos' comments quote them.

- ``MAX_DURATION_S``: longest video, 43,200 s (12 h).
- ``MAX_SEGMENTS``: most segments of one rendition, 100,000 (a 12 h video in
  2 s segments is 21,600, with room for shorter segments).
- ``MAX_SEGMENT_BYTES``: largest segment, 16 MiB.
- ``DEFAULT_MAX_FILE_BYTES``: largest raw upload by default, 256 MiB
  (268,435,456 bytes): ``settings.video-upload.max_file_bytes`` (checked at
  InitiateUpload) and ``settings.video-storage.max_object_bytes`` (checked on
  every UploadObject chunk, whatever size the token declares) default to it.
- ``MAX_PHOTO_RENDITION_BYTES``: largest stored photo size, 2 MiB
  (PutRendition's ``segment_data``; a request is at most 4 MiB,
  services/runtime/server.py).
- ``MAX_FILE_BYTES_LIMIT``: the most either setting may be raised to, 4 GiB
  (the seed's "up to 4 GB", shared/seeds/004_718541f717f7b956.txt).
"""

from __future__ import annotations

#: Longest video in seconds (12 h).
MAX_DURATION_S = 43_200.0
#: Most segments of one rendition (PublishVideo, PutRendition).
MAX_SEGMENTS = 100_000
#: Largest segment in bytes (16 MiB).
MAX_SEGMENT_BYTES = 16 << 20
#: Default largest raw upload, in bytes (256 MiB).
DEFAULT_MAX_FILE_BYTES = 256 << 20
#: Highest value the upload and storage size limits accept, in bytes (4 GiB, the seed's "up to 4 GB").
MAX_FILE_BYTES_LIMIT = 4 << 30
#: Largest photo size stored with PutRendition's ``segment_data``, in bytes (2 MiB).
MAX_PHOTO_RENDITION_BYTES = 2 << 20
