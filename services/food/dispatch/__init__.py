"""``food-dispatch``: the food-delivery case study's FoodDispatchService, regional dispatch of orders to couriers with
batching (seed 001 #13 "Food Delivery": regional dispatch)."""
