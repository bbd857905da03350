"""The food-delivery case study (seed 001 #13 "Food Delivery"): restaurants' kitchens, orders, regional dispatch."""
