"""``ads-frequency``: per-user impression counts and frequency caps of the ad serving case study (seed 001 #15)."""
