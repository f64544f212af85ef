"""Delivery receipts: SES/SMS events from SQS, complaints and retention (DESIGN §2.5, §2.3)."""
