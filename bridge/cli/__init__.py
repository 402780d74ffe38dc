"""The command line: thin wrappers that parse flags, build configuration and clients, and call
the library."""
