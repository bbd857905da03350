"""``ecommerce-orders``: CheckoutService, the shop's checkout as a saga with compensation (seed 000 "E-commerce Platform
(like Amazon)": "Order Service: Saga pattern for distributed transactions"; seed 003 "Amazon E-commerce" processOrder)."""
