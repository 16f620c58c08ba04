"""Running the app in production: the scheduler's lease, health and metrics, backups."""
