"""ads-campaigns: CampaignService, advertisers' campaigns in a durable, group-committed SQLite log, each change a new
store version that ListCampaigns follows (ads-server's targeting index and ads-budget's budgets keep current by it).

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40: "| 15 | Ad Serving | <100ms decisioning, frequency caps,
first-price auction, pacing, privacy-first | 1M RPS, Google Ads |"); see :mod:`.service`.
"""
