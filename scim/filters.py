"""SCIM `filter` → Django Q, parsed by scim2-filter-parser; only the lookups IdPs send.

Users: `userName eq`, `externalId eq`, `emails.value eq` (also `emails eq`), `id eq`;
Groups: `displayName eq`, `externalId eq`, `id eq`; combined with `and` / `or` and parentheses.
Anything else (other operators, attributes, `not`, value paths) is refused as invalidFilter.
"""

from __future__ import annotations

from django.db.models import Q
from scim2_filter_parser import ast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser

from .resources import parse_id
from .services import ScimError

USER_ATTRIBUTES = {
    ("username", None): "username__ci",
    ("externalid", None): "scim_link__external_id",
    ("emails", "value"): "email__ci",
    ("emails", None): "email__ci",
    ("id", None): "pk",
}
GROUP_ATTRIBUTES = {
    ("displayname", None): "display_name__iexact",
    ("externalid", None): "external_id",
    ("id", None): "pk",
}
MAX_LENGTH = 1000
CORE_PREFIX = "urn:ietf:params:scim:schemas:core:2.0:"


def invalid(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


def parse(text: str):
    """Return the filter's syntax tree, or raise invalidFilter."""
    if len(text) > MAX_LENGTH:
        raise invalid("The filter is too long.")
    try:
        tree = SCIMParser().parse(SCIMLexer().tokenize(text))
    except Exception as exc:
        raise invalid("The filter cannot be parsed.") from exc
    if tree is None:
        raise invalid("The filter cannot be parsed.")
    return tree


def to_q(text: str, attributes: dict) -> Q:
    """Return the Q of a filter over the given attribute map, or raise invalidFilter."""
    return _node(parse(text), attributes)


def _node(node, attributes: dict) -> Q:
    if isinstance(node, ast.Filter):
        if node.negated or node.namespace is not None:
            raise invalid("'not' and value paths are not supported in filters.")
        return _node(node.expr, attributes)
    if isinstance(node, ast.LogExpr):
        left, right = _node(node.expr1, attributes), _node(node.expr2, attributes)
        return left & right if node.op.lower() == "and" else left | right
    if isinstance(node, ast.AttrExpr):
        return _comparison(node, attributes)
    raise invalid("Unsupported filter expression.")


def _comparison(node: ast.AttrExpr, attributes: dict) -> Q:
    if str(node.value).lower() != "eq":
        raise invalid(f"Only 'eq' is supported, not {str(node.value)[:10]!r}.")
    path = node.attr_path
    name = str(path.attr_name)
    if path.uri:
        name = name.removeprefix(str(path.uri)).lstrip(":")
    name = name.removeprefix(CORE_PREFIX).split(":")[-1]
    sub = path.sub_attr.value if isinstance(path.sub_attr, ast.SubAttr) else None
    key = (name.lower(), sub.lower() if sub else None)
    lookup = attributes.get(key)
    if lookup is None:
        raise invalid(f"Filtering on {name[:60]!r} is not supported.")
    value = node.comp_value.value if node.comp_value is not None else None
    if not isinstance(value, str):
        raise invalid("Compare with a string value.")
    if lookup == "pk":
        pk = parse_id(value)
        return Q(pk=pk) if pk is not None else Q(pk__in=[])
    return Q(**{lookup: value})
