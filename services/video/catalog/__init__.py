"""``video-catalog``: CatalogService, the video platform's metadata, social graph, view counts and home feed.

Modules, one job each: ``videos`` (catalogue store and life-cycle),
``comments``, ``subscriptions``, ``feed`` (merge on read), ``views`` (view
count snapshots), ``indexer`` (publish events to video-search), ``validation``,
``settings`` and ``service`` (the thin servicer and ``DEFINITION``).
"""
