"""`{% memo "name" key %}…{% endmemo %}`: render a block once per distinct key in this process.

The menu and the home page's tiles are the same few hundred nodes for everybody who holds the
same screens; they are drawn once per (name, key, language) and then copied. Things that never
change once written (the activity log's rows) use it too, hence room for a few pages of them.
The block must depend on its key alone (no CSRF token, nonce or per-request value inside it)
and holds no `{% block %}`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from django import template
from django.utils.safestring import mark_safe
from django.utils.translation import get_language

register = template.Library()

MEMO_SIZE = 4096
_memo: OrderedDict = OrderedDict()
_lock = threading.Lock()


class MemoNode(template.Node):
    # Not searched for blocks (none may be inside): `{% extends %}` walks the root template's node
    # tree for them (once per compiled template), and the memorised loops are most of it.
    child_nodelists = ()

    def __init__(self, name: str, key, nodelist):
        self.name = name
        self.key = key
        self.nodelist = nodelist

    def render(self, context):
        # The page's language, as the shell's context gives it (reading the active language
        # costs more than the lookup of the memorised block).
        language = context.get("LANGUAGE_CODE") or get_language()
        key = (self.name, self.key.resolve(context), language)
        with _lock:
            html = _memo.get(key)
            if html is not None:
                _memo.move_to_end(key)
                return html
        html = mark_safe(self.nodelist.render(context))  # noqa: S308 - rendered by the template
        with _lock:
            _memo[key] = html
            while len(_memo) > MEMO_SIZE:
                _memo.popitem(last=False)
        return html


def remembered(name: str, key, language: str) -> bool:
    """Return whether the block `name` is kept for `key` in `language` (a view that knows a
    block will not be drawn can skip reading what only the drawing needs)."""
    with _lock:
        return (name, key, language) in _memo


@register.tag
def memo(parser, token):
    bits = token.split_contents()
    if len(bits) != 3 or bits[1][0] not in "\"'" or bits[1][-1] != bits[1][0]:
        raise template.TemplateSyntaxError('Usage: {% memo "name" key %}…{% endmemo %}')
    nodelist = parser.parse(("endmemo",))
    parser.delete_first_token()
    return MemoNode(bits[1][1:-1], parser.compile_filter(bits[2]), nodelist)
