"""What an operator looks at: dead letters, queue depths, executions (library behind the
``callback-bridge dlq`` and ``callback-bridge status`` commands).

Everything here takes AWS clients as arguments and returns plain data; the CLI renders it.
"""
