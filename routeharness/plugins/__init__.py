"""Plugins: the hook specifications, the plugin host (built-ins, entry points, blocking) and the name registries."""
