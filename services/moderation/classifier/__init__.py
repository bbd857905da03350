"""``moderation-classifier``: the lexical violation classifier of the content moderation case study, fitted at start on
the labelled corpus (seed 001 #26 "Content Moderation": AI classifiers); see :mod:`.service`."""
