"""protokit: the proto-first toolchain for Python gRPC services."""

__version__ = "0.1.0"
