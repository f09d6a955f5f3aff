"""Template tags of single sign-on: the identity providers offered on the sign-in page."""

from django import template

from sso.services import providers_for_sign_in

register = template.Library()


@register.inclusion_tag("sso/sign_in_providers.html", takes_context=True)
def sso_sign_in_options(context):
    """List a "Sign in with <IdP>" link for every enabled identity provider."""
    return {"providers": list(providers_for_sign_in()), "next": context.get("next", "")}
