"""The wire contract: marshmallow schemas shared by the API and the sync endpoints."""
