"""rides-location: where every online driver is (protos/casemesh/rides/v1/location.proto; seed 003 "Uber Ride
Matching", Geospatial Indexing)."""
