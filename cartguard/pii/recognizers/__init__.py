"""Built-in recognizers, one module per label; :mod:`cartguard.pii.registry` lists them."""
