"""The recommendation-engine case study (seeds 001 #19, 003 Netflix and Spotify): reco-signals, reco-candidates, reco-ranker."""
