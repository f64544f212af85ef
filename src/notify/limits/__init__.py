"""Per-service rate limits and daily sending limits, enforced in Redis at the front door (DESIGN §4.4)."""
