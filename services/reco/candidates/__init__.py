"""``reco-candidates``: candidate generation (item co-occurrence, implicit-feedback ALS embeddings, trending) over a trained model."""
