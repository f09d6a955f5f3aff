"""`{% two_factor_status subject %}`: the two-factor card of a user's security tab."""

from django import template

from roles import catalog

from ..twofactor import services as twofactor

register = template.Library()


@register.inclusion_tag("twofactor/_status.html", takes_context=True)
def two_factor_status(context, subject):
    """Render the two-factor state of `subject`, with support links for who may use them."""
    request = context.get("request")
    user = getattr(request, "user", None)
    own = user is not None and user.pk == subject.pk
    perms = getattr(request, "permissions", None)
    can_support = perms is not None and perms.has(catalog.DP_ACCESS, catalog.FULL)
    return {
        "status": twofactor.status(subject),
        "own": own,
        "target": subject if can_support and not own else None,
        "csrf_token": context.get("csrf_token"),
        "request": request,
    }
