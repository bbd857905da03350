"""ads-budget: BudgetService, each campaign's spend per day, charged atomically, durably and idempotently per
impression, never beyond the daily budget, and (with pacing on) spread evenly over the day.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40: "| 15 | Ad Serving | <100ms decisioning, frequency caps,
first-price auction, pacing, privacy-first | 1M RPS, Google Ads |"); see :mod:`.service`.
"""
