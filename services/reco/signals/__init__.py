"""``reco-signals``: users' interactions, the real-time signals and the training log (:mod:`.store`, :mod:`.service`)."""
