"""An old address of a task: `siem.tasks.flush_stream` is `siem.stream.flush_stream` now.

The task moved beside the code it runs; tasks queued before an upgrade still name it by this path.
"""

from .stream import flush_stream

__all__ = ["flush_stream"]
