"""The web crawler (seed 001 #28 "Web Crawler"): ``web`` (the synthetic web it crawls, which also referees every
fetch: robots.txt, politeness, repeats) and ``frontier`` (the crawler: the BFS URL frontier with per-host politeness
queues, robots.txt, MD5 and SimHash deduplication, and the feed to the search engine's indexer); ``contract`` is what
they share. See docs/case-studies/crawler.md.
"""
