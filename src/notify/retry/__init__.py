"""Re-send failed or bounced notifications on an operator's request (`notify retry`, DESIGN §1)."""
