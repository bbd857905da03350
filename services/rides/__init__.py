"""Ride sharing (Uber; seeds 000 "Ride-Sharing (like Uber)", 003 "Uber Ride Matching", 001 #02): docs/case-studies/rides.md."""
