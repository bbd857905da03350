"""``settings.photo-resizer`` of the topology."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ResizerSettings(BaseModel):
    """``settings.photo-resizer`` of the topology.

    - ``max_image_pixels``: the most pixels (width x height) an original may
      have, in pixels (default 40,000,000: a 48 MP phone photo is refused,
      a 12 MP or 24 MP one is not; >= 1). Checked from the header before any
      decoding (ProbeOriginal and RenderSizes answer FAILED_PRECONDITION
      beyond it); it bounds a decode's memory (about 4 bytes a pixel for a
      PNG with alpha, 3 for a JPEG decoded at full size). Pillow refuses
      more than 178,956,970 pixels whatever this says.
    - ``max_parallel_renders``: RenderSizes calls decoding and encoding at
      once in this process (default 2, 1 to 64); more calls wait their turn.
      Pillow releases the GIL while it works, so up to this many cores are
      used; memory is at most this many decodes at a time.
    - ``storage_timeout_ms``: timeout of each call to the object store
      (ReadObject of a whole original, up to 10 MiB; PutRendition of one
      size, up to 2 MiB), in milliseconds (default 10,000; 1 to 600,000).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_image_pixels: int = Field(default=40_000_000, ge=1)
    max_parallel_renders: int = Field(default=2, ge=1, le=64)
    storage_timeout_ms: int = Field(default=10_000, ge=1, le=600_000)
