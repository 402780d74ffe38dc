"""Operations: what an operator runs against a deployed (or embedded) bridge.

Inspecting dead letters and executions (:mod:`bridge.ops.inspect`), the ``status`` snapshot,
redriving dead letters, and large fan-outs through S3 (``callback-bridge run``). This layer
sits above the product core and beside the worker: it may import the core, never the worker,
the CLI or the tools (the import contract in ``pyproject.toml`` enforces it).
"""
