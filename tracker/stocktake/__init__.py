"""Stock-take (棚卸): counting sessions, next-count dates and the items due for a count."""
