"""Online banking (seed 001 #14 "Online Banking"): the double-entry ledger and the customer-facing transfers."""
