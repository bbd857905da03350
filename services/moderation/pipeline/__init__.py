"""``moderation-pipeline``: ModerationService of the content moderation case study (seed 001 #26,
shared/seeds/001_58dfc580020147d2.txt line 50: "Content Moderation | AI classifiers (BERT/ResNet), confidence routing,
human review"): items in, confidence routing, appeals, the audit log; see :mod:`.service`."""
