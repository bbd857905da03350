"""``social-timeline``: home timelines by hybrid fan-out (:mod:`.cache`, :mod:`.fanout`, :mod:`.ranking`, :mod:`.service`)."""
