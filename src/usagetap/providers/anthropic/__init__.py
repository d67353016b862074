"""Anthropic (first party, Bedrock, Vertex): adapter, usage extraction and loopback wire format."""
