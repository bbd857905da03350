"""``trading-engine``: the exchange's matching engine (seed 001 #08 "Stock Trading": order matching engine, order
book): price-time priority books (:mod:`.book`), a durable sequenced event log with group commit (:mod:`.journal`),
the engine (:mod:`.engine`) and its gRPC service (:mod:`.service`)."""
