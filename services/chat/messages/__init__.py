"""``chat-messages``: conversations, the durable message log, delivery cursors and the ordered fan-out (:mod:`.store`, :mod:`.journal`, :mod:`.fanout`, :mod:`.service`)."""
