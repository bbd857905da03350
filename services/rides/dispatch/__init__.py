"""``rides-dispatch``: the ride-sharing case study's DispatchService, matching rides with drivers in phases of offers (seed 003 "Uber Ride Matching")."""
