"""Delivery: from capture to a sink's acknowledgement."""

from .pipeline import DURABILITY, FlushResult, Item, Pending, Pipeline, Settings, default_spool_path

__all__ = ["DURABILITY", "FlushResult", "Item", "Pending", "Pipeline", "Settings", "default_spool_path"]
