"""Files sent with an email: validated in the API, kept in S3, attached or linked at delivery (DESIGN §2.8)."""
