"""(being written) compat patches for Step Functions; see the package docstring."""

from __future__ import annotations

from bridge.local_stack.compat import Patch

PATCHES: list[Patch] = []
