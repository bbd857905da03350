"""``payments-fraud``: the payment gateway case study's FraudService: weighted rules over sliding windows of each
card's and each customer's recent payments (seed 001 #25 "Payment Gateway": "fraud detection")."""
