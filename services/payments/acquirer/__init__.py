"""``payments-psp-a`` / ``payments-psp-b``: the payment gateway case study's simulated acquirers (PSPs): one module,
two topology names, each with its own issuer latency, decline rate and fees, a durable ledger of authorizations,
captures and refunds, and settlement batches written as files (seed 001 #25 "Payment Gateway": PSP routing,
settlement)."""
