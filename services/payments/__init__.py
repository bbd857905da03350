"""Payment gateway (seed 001 #25): the card vault, fraud rules, simulated acquirers, the gateway and settlement."""
