"""Status callbacks to the services' own endpoints (DESIGN §2.6)."""
