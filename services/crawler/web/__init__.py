"""crawler-web: SyntheticWebService, the generated web of hosts the crawler crawls (Zipf text, preferential-attachment
links, near and exact copies, robots.txt variants, slow and failing hosts), and the referee that audits every crawl's
fetches for robots.txt, politeness and duplicate violations.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "| 28 | Web Crawler | URL frontier, robots.txt,
politeness, deduplication (MD5/Simhash), BFS | 10B pages, Googlebot-scale |"); see :mod:`.service`.
"""
