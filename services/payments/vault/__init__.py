"""``payments-vault``: the payment gateway case study's CardVaultService: card numbers in, tokens out, numbers kept
encrypted (seed 001 #25 "Payment Gateway": "PCI DSS (HSM tokenization)")."""
