"""``live-chat``: a live stream's chat with moderation, in front of the chat case study's MessageService.

Seed 001 #12 (shared/seeds/001_58dfc580020147d2.txt), "Live Streaming":
"chat moderation". Domain modules (no gRPC): ``moderation`` (banned words
with one Aho-Corasick pass, the per-user moving-window rate limit),
``rooms`` (stream → chat conversation, durable in SQLite). ``service`` holds
the ``ServiceDefinition``; ``settings`` and ``metrics`` as everywhere.
"""
