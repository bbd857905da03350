"""The proximity service case study (seed 001 #29 "Proximity Service"): places search, location tracking, geofencing."""
