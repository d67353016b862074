"""Google's ``google-genai`` SDK: the Gemini API (provider ``google``) and Vertex AI (``vertex``)."""
