"""Framework integrations: attribute the LLM calls made while serving a request or running a task.

Each module imports its framework only when used; install the matching extra:

- :mod:`usagetap.integrations.asgi` — ASGI middleware for FastAPI, Starlette and other
  ASGI apps (``pip install 'usagetap[fastapi]'``).
- :mod:`usagetap.integrations.django` — Django middleware, WSGI or ASGI (``usagetap[django]``).
- :mod:`usagetap.integrations.celery` — carry the customer scope from the code that
  queues a task into the worker that runs it, and flush when the worker stops
  (``usagetap[celery]``).
- :mod:`usagetap.integrations.litellm` — a LiteLLM callback (``litellm.callbacks = [callback]``):
  one record per call from LiteLLM's normalized usage, none added for a call the metered SDK
  underneath already recorded (``usagetap[litellm]``). LangChain, the OpenAI Agents SDK and
  Pydantic AI need no integration: they call the openai / anthropic SDKs, which
  ``usagetap.instrument()`` (or a wrapped client handed to them) meters.

The web middlewares take a *resolver*: a function of the request that returns the
customer id (``str``; an ``int`` is turned into one), ``None`` when the request has
no customer, or a ``(customer_id, dimensions)`` pair. It may be sync or async. If it
raises, the request is served anyway, without a customer scope; the error is logged
once and counted as ``resolver_errors``.
"""
