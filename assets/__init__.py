"""Shipped model packages and application resources (installed as ``malbeot_assets``)."""
