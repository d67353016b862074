"""Delivery: from capture to a sink's acknowledgement."""

from .pipeline import FlushResult, Item, Pending, Pipeline

__all__ = ["FlushResult", "Item", "Pending", "Pipeline"]
