"""rides-pricing: upfront quotes and surge pricing (protos/casemesh/rides/v1/pricing.proto; seed 003 "Uber Ride
Matching", Surge Pricing)."""
