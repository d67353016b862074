"""A toy provider SDK for the toy provider (:mod:`tests.providers.toy`): a client class with ``request()``.

Shaped like the Stainless SDKs usagetap hooks: every call goes through ``request(cast_to, options)``;
a streamed call returns a :class:`Stream` whose ``_iterator`` yields the decoded events and whose
``response`` is closed when it ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

import httpx


@dataclass
class Options:
    method: str
    url: str
    json_data: Optional[dict[str, Any]] = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Tally:
    """A finished tally: its id, model and usage as the wire sent them."""

    id: str
    model: str
    words: list[str]
    usage: dict[str, int]


class Stream:
    """The events of a streamed tally, decoded as they arrive."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._iterator = self.__stream__()

    def __stream__(self) -> Iterator[dict[str, Any]]:
        try:
            for line in self.response.iter_lines():
                if line.startswith("data: "):
                    yield json.loads(line[6:])
        finally:
            self.response.close()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from self._iterator

    def close(self) -> None:
        self.response.close()


class Tallies:
    def __init__(self, client: Toy) -> None:
        self._client = client

    def create(self, *, model: str, prompt: str, stream: bool = False) -> Any:
        body = {"model": model, "prompt": prompt, "stream": stream}
        return self._client.request(Stream if stream else Tally, Options("post", "/v1/tallies", body))


class Toy:
    """The toy SDK's client."""

    def __init__(self, *, base_url: str, api_key: str) -> None:
        self.base_url = httpx.URL(base_url)
        self.api_key = api_key
        self._http = httpx.Client()

    @property
    def tallies(self) -> Tallies:
        return Tallies(self)

    def copy(self) -> Toy:
        return type(self)(base_url=str(self.base_url), api_key=self.api_key)

    def request(self, cast_to: type, options: Options) -> Any:
        request = self._http.build_request(
            options.method.upper(),
            str(self.base_url).rstrip("/") + options.url,
            json=options.json_data,
            headers={"authorization": f"Bearer {self.api_key}", **options.headers},
        )
        response = self._http.send(request, stream=cast_to is Stream)
        response.raise_for_status()
        if cast_to is Stream:
            return Stream(response)
        return Tally(**response.json())
