"""The portal's shared plumbing (no models): view bases, access declarations, navigation, the page
shell's context, and the helpers screens share.

- `portal.access`: what a view needs (`@requires`, `@public`, `@signed_in`, class-view mixin).
- `portal.generic`: class-view bases (`PortalListView`, `PortalDetailView`, `PortalFormView`,
  `PortalConfirmView`) that know about permissions, owner scoping and service refusals.
- `portal.forms`: `apply_service_errors`, a service's refusal shown on a form.
- `portal.navigation`: the menu (`Screen`, `register`, `menu_for`) and the shell's links.
- `portal.context_processors`: the menu and shell for every template.
- `portal.redirects`: `safe_next`, the `next` target when it stays on this site.
- `portal.templatetags.navigation`: `{% memo %}`, which draws the menu once per distinct key.

Authorization itself (catalog, resolver, permission middleware, guards) lives in `roles`.
"""
