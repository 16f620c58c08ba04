"""Stock-takes (棚卸): counting what is physically there against the register, reconciled and reported."""
