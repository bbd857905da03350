"""``food-orders``: the food-delivery case study's OrderService: every order, its fee, its promised time and its one
courier (seed 001 #13 "Food Delivery")."""
