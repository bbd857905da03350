"""Stock trading (seed 001 #08 "Stock Trading": order matching engine, order book, market data, < 10 ms p99): the
matching engine (``trading-engine``), the order gateway and the market data service, and their shared contract rules
(:mod:`.contract`)."""
