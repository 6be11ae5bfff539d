"""Reaching into guests, and building guest images."""
