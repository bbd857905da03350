"""proximity-tracker: where every moving entity is, its positions checked against the geofences
(protos/casemesh/proximity/v1/tracker.proto; seed 001 #29 "Proximity Service": real-time location updates)."""
