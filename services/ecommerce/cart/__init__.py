"""ecommerce-cart: shopping carts whose lines hold inventory reservations (protos/casemesh/ecommerce/v1/cart.proto;
seed 000 "E-commerce Platform (like Amazon)": "Cart Service: Redis for session, real-time inventory reservation")."""
