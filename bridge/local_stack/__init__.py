"""The embedded local AWS (moto server in-process) the bridge runs on by default."""

from bridge.local_stack.stack import LocalStack, StackSettings

__all__ = ["LocalStack", "StackSettings"]
