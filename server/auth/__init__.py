"""Who is calling: passwords, tokens, roles and devices."""
