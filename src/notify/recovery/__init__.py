"""Recovery jobs: in-flight-to-inbox, replay-created-notifications, timeout-notifications, dead letters."""
