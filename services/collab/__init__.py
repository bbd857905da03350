"""Collaborative documents (seed 001 #06, "Collaborative Docs": Google Docs): a Yjs CRDT per document, edited over bidi streams."""
