"""Template tags every template has without `{% load %}` (TEMPLATES OPTIONS "builtins").

`{% extends %}` is Django's own, with one difference: the blocks of the root template are found
once per compiled template rather than on every render. Django's tag walks the parent's whole
node tree each time a page is drawn to collect them, and every page of the portal extends
`base.html`; that walk cost about as much as the rest of the page shell's blocks together.
A compiled template's nodes never change (the cached loader compiles a template again, as a new
object, when it reloads it), so the blocks found the first time stay right.
"""

from __future__ import annotations

from django import template
from django.template import loader_tags
from django.template.base import TextNode

register = template.Library()


def _root_blocks(compiled_parent) -> dict:
    """Return the blocks `compiled_parent` adds when it is the root of the inheritance chain
    (none when it extends another template itself), found once per compiled template."""
    try:
        return compiled_parent._root_blocks
    except AttributeError:
        pass
    blocks: dict = {}
    for node in compiled_parent.nodelist:
        # The extends tag has to be the first non-text node.
        if not isinstance(node, TextNode):
            if not isinstance(node, loader_tags.ExtendsNode):
                blocks = {
                    block.name: block
                    for block in compiled_parent.nodelist.get_nodes_by_type(loader_tags.BlockNode)
                }
            break
    compiled_parent._root_blocks = blocks
    return blocks


class ExtendsNode(loader_tags.ExtendsNode):
    def render(self, context):
        compiled_parent = self.get_parent(context)
        if loader_tags.BLOCK_CONTEXT_KEY not in context.render_context:
            context.render_context[loader_tags.BLOCK_CONTEXT_KEY] = loader_tags.BlockContext()
        block_context = context.render_context[loader_tags.BLOCK_CONTEXT_KEY]
        # This template's blocks, then (when the parent is the root) the root's blocks.
        block_context.add_blocks(self.blocks)
        block_context.add_blocks(_root_blocks(compiled_parent))
        # Template._render, so that the parser context stays the same (as Django's tag).
        with context.render_context.push_state(compiled_parent, isolated_context=False):
            return compiled_parent._render(context)


@register.tag("extends")
def do_extends(parser, token):
    """`{% extends "base.html" %}`: Django's tag, parsed and checked by Django."""
    node = loader_tags.do_extends(parser, token)
    return ExtendsNode(node.nodelist, node.parent_name, node.template_dirs)
