"""Notifications: the outbox filled in the sweep's transaction, reminders, delivery by e-mail and webhook."""
