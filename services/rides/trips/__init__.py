"""``rides-trips``: the ride-sharing case study's TripService, every ride and its trip state machine (seed 003 "Uber Ride Matching")."""
