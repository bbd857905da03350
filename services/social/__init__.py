"""The social feed case study (Twitter): tweets, the follow graph and hybrid fan-out home timelines.

Seeds: shared/seeds/000_69ff90d97cf45f9b.txt "Social Media Feed (like
Twitter)", shared/seeds/003_1dfe16d8ccfde9ed.txt "Twitter Feed System".
Services (docs/case-studies/social-feed.md): ``social-graph``
(:mod:`.graph`), ``social-tweets`` (:mod:`.tweets`), ``social-timeline``
(:mod:`.timeline`), and the shared ``idgen`` for Snowflake tweet IDs.
"""
