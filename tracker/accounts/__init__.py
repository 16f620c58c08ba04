"""Accounts: users, sign-in with throttling, sessions, and the account and admin-user pages."""
