"""Mistral AI, through the ``mistralai`` SDK (1.x, 2.x, 3.x): chat, FIM, agents and embeddings."""
