"""The router contract (``BaseRouter``, ``Tags``, the selection rule) and a fitted router's saved state."""
