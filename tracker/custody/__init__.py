"""Custody: check out, return, hand over, bags, the site's policy, and the phone pages of a label scan."""
