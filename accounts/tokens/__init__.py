"""API tokens (models, services, screens), and the token base and lifecycle SCIM tokens share."""
