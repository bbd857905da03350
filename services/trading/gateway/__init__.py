"""``trading-gateway``: OrderEntryService, the exchange's order gateway (seed 001 #08 "Stock Trading")."""
