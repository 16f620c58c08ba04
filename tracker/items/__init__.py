"""The item register: items and bags, label tokens, CSV import, and the admin pages."""
