"""Ad serving (seed 001 #15): campaigns, budgets with pacing, frequency caps, and the ad server's first-price auction."""
