"""``ads-server``: the ad decision service of the ad serving case study (seed 001 #15)."""
