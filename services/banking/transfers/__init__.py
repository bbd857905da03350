"""``banking-transfers``: TransferService, the bank's customer-facing money movement (seed 001 #14 "Online Banking")."""
