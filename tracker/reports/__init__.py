"""Records for the desk and auditors: CSV exports, charts, and an item's history."""
