"""food-restaurants: the restaurants and their kitchens' queues (protos/casemesh/food/v1/restaurants.proto; seed 001 #13
"Food Delivery": orders flow through the restaurant's preparation time before a courier can pick them up)."""
