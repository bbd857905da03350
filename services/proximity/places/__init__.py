"""proximity-places: businesses and points of interest, found by distance (protos/casemesh/proximity/v1/places.proto;
seed 001 #29 "Proximity Service": H3 radius search over places, Yelp)."""
