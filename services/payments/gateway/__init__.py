"""``payments-gateway``: PaymentGatewayService and SettlementService in one process (seed 001 #25 "Payment Gateway")."""
