"""Single sign-on over SAML 2.0: each owner's identity providers and group mappings (models),
the service provider's configuration, metadata and response checks, sign-in (services), the
screens and the SAML endpoints (urls, views, screens).
The tables keep the names they had when these models belonged to the security app."""
