"""Another owner's objects answer 404: the lookup every screen and service makes by id."""

from __future__ import annotations

from django.http import Http404


def get_owned_or_404(actor, queryset, pk):
    """Return the object with `pk` from `queryset` if it belongs to the actor's owner, else 404."""
    try:
        pk = int(pk)
    except (TypeError, ValueError) as exc:
        raise Http404("Not found.") from exc
    obj = queryset.filter(pk=pk, owner_id=actor.owner_id).first()
    if obj is None:
        raise Http404("Not found.")
    return obj
