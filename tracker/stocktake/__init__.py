"""Stock-takes (棚卸): counting sessions reconciled against the register and reported, next-count dates and the
items due for a count."""
