"""Kept for imports that predate the web core: the client IP now lives in ``core.context``."""

from core.context import client_ip

__all__ = ["client_ip"]
