"""``banking-ledger``: LedgerService, the bank's double-entry ledger (seed 001 #14 "Online Banking")."""
