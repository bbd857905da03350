"""``ecommerce-inventory``: InventoryService, the shop's stock and its reservations with a TTL (seed 000 "E-commerce
Platform (like Amazon)": "Inventory reservation: Optimistic locking with TTL", no overselling)."""
