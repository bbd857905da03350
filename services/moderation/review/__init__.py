"""``moderation-review``: the human review queue of the content moderation case study: tasks due within their kind's
SLA, handed out earliest due first under leases, and the verdicts' outbox the pipeline pulls (seed 001 #26 "Content
Moderation": human review); see :mod:`.service`."""
