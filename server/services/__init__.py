"""Use cases: each opens one transaction, calls the domain and storage, and commits."""
