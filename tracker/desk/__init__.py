"""The security desk: the day-end sweep, overdue flags, incidents and the APPI rules, finders' reports, the board."""

from . import flags as flags  # connects "a check-out ended" to closing its flag
