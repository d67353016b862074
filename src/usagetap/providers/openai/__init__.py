"""OpenAI and OpenAI-compatible servers: adapter, usage extraction and loopback wire format."""
