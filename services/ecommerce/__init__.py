"""E-commerce (seed 000 "E-commerce Platform (like Amazon)", seed 001 #05): catalogue search, carts with inventory
reservations, and checkout as a saga over the payment gateway."""
