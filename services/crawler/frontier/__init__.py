"""The web crawler, ``crawler`` (CrawlerService): a breadth-first URL frontier with a queue per host, a process-wide
host clock for politeness, robots.txt (protego), MD5 and SimHash deduplication, and the feed to the search engine's
indexer (seed 001 #28, shared/seeds/001_58dfc580020147d2.txt line 34: "Web Crawler | URL frontier, robots.txt,
politeness, deduplication (MD5/Simhash), BFS"). The service: :mod:`.service`.
"""
