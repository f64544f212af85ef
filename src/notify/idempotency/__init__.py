"""`Idempotency-Key` on POSTs: a retried request replays the first response and creates nothing new (DESIGN §11)."""
