"""SCIM 2.0 provisioning: the identity provider creates, changes and removes users and groups."""
