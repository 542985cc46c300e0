"""Thin typed wrappers over the Microsoft SDKs; the only code that imports them."""
