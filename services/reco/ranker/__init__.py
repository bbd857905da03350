"""``reco-ranker``: seed 003's weighted merge of a candidate pool (:mod:`.ranking`, :mod:`.settings`, :mod:`.service`)."""
