"""The action server's actions, one module per feature. They are thin: identify the shopper,
call ``cartguard``, choose a response. Secrets and storage live in ``cartguard``."""
