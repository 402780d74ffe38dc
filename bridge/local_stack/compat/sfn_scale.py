"""Step Functions patches (sfn_scale): see PATCHES."""

from __future__ import annotations

from bridge.local_stack.compat import Patch

PATCHES: list[Patch] = []
