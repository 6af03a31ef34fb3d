"""The retention review: the register description's ``review_rules`` applied to the warehouse,
each stale person an erasure case awaiting approval (``review.py``); the monthly
``retention_review`` job runs it."""
