"""The demo: a synthetic Shanghai data set, the command that loads it, and its logins."""
