"""``trading-marketdata``: MarketDataService, the exchange's market data feed (seed 001 #08 "Stock Trading")."""
