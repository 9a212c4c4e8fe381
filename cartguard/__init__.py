"""Cartguard: the security core and shop library shared by actions, channels and web service."""

__version__ = "0.1.0"
