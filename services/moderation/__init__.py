"""Content moderation (seed 001 #26 "Content Moderation", shared/seeds/001_58dfc580020147d2.txt line 50: "| 26 | Content
Moderation | AI classifiers (BERT/ResNet), confidence routing, human review, CSAM detection | 100M items/day,
Meta/YouTube |").

Three services (docs/case-studies/moderation.md): ``moderation-classifier`` (a lexical model fitted at start on the
labelled corpus, :mod:`.corpus`), ``moderation-pipeline`` (items in, confidence routing, appeals, the audit log) and
``moderation-review`` (the human review queue with its SLA, leases and the verdicts' outbox). What clients and
servers both speak is :mod:`.contract`; the labelled corpus both sides draw from is :mod:`.corpus`.
"""
