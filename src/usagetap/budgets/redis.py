"""The Redis budget store: each operation is one Lua script, so it runs atomically on the server.

Per bucket, two keys: ``usagetap:budget:<bucket>:u`` (a hash of settled calls, tokens, nanos,
unpriced; it expires after its period) and ``usagetap:budget:<bucket>:h`` (live reservations:
hold id -> ``"tokens nanos expires"``). Buckets start with ``{customer}``, the Redis Cluster hash
tag, so every key a script touches is on one node. Time is the server's (``TIME``). Connect and
command waits are bounded by ``timeout``. redis-py is imported when the store is made
(``usagetap[redis]``).
"""

from __future__ import annotations

import json
from typing import Any, Optional

from .base import Charge, Refusal, StoreUnavailable, Used, distinct

__all__ = ["RedisBudgets"]

_PREFIX = "usagetap:budget:"

_HELD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function held(key)
  local tokens, nanos = 0, 0
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local a, b, e = string.match(all[i + 1], '^(%-?%d+) (%-?%d+) (%S+)$')
    if tonumber(e) <= now then
      redis.call('HDEL', key, all[i])
    else
      tokens = tokens + tonumber(a)
      nanos = nanos + tonumber(b)
    end
  end
  return tokens, nanos
end
local function used(window)
  local u = {0, 0, 0, 0, 0, 0}
  for _, b in ipairs(window) do
    local v = redis.call('HMGET', b .. ':u', 'calls', 'tokens', 'nanos', 'unpriced')
    for j = 1, 4 do u[j] = u[j] + (tonumber(v[j]) or 0) end
    local ht, hn = held(b .. ':h')
    u[5] = u[5] + ht
    u[6] = u[6] + hn
  end
  return u
end
"""

_RESERVE = (
    _HELD
    + """
local spec = cjson.decode(ARGV[1])
local hold, ttl = ARGV[2], tonumber(ARGV[3])
for i, c in ipairs(spec) do
  local u = used(c.w)
  if (c.mt and u[2] + u[5] + c.t > c.mt) or (c.mn and u[3] + u[6] + c.n > c.mn) then
    return {i - 1, u[1], u[2], u[3], u[4], u[5], u[6]}
  end
end
for _, c in ipairs(spec) do
  local key = c.b .. ':h'
  local old = redis.call('HGET', key, hold)
  local t, n = c.t, c.n
  if old then
    local a, b = string.match(old, '^(%-?%d+) (%-?%d+)')
    t, n = t + tonumber(a), n + tonumber(b)
  end
  redis.call('HSET', key, hold, string.format('%d %d %.3f', t, n, now + ttl))
  if redis.call('PTTL', key) < ttl * 2000 then redis.call('PEXPIRE', key, math.ceil(ttl * 2000)) end
end
return -1
"""
)

_SETTLE = """
local spec = cjson.decode(ARGV[1])
local hold = ARGV[2]
local calls, tokens = tonumber(ARGV[3]), tonumber(ARGV[4])
local nanos, unpriced = tonumber(ARGV[5]), tonumber(ARGV[6])
for _, c in ipairs(spec) do
  redis.call('HDEL', c.b .. ':h', hold)
  local key = c.b .. ':u'
  redis.call('HINCRBY', key, 'calls', calls)
  redis.call('HINCRBY', key, 'tokens', tokens)
  redis.call('HINCRBY', key, 'nanos', nanos)
  redis.call('HINCRBY', key, 'unpriced', unpriced)
  if c.e then redis.call('PEXPIREAT', key, math.ceil(c.e * 1000)) end
end
return 0
"""

_RELEASE = """
local hold = ARGV[1]
for _, key in ipairs(KEYS) do redis.call('HDEL', key, hold) end
return 0
"""

_USED = (
    _HELD
    + """
local window = {}
for i, b in ipairs(ARGV) do window[i] = b end
return used(window)
"""
)


def _key(bucket: str) -> str:
    return _PREFIX + bucket


class RedisBudgets:
    """A :class:`~usagetap.budgets.base.BudgetStore` on the Redis server at ``url``
    (``redis://``, ``rediss://`` or ``unix://``); ``timeout`` bounds connecting and each command."""

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        import redis

        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        self._reserve = self._client.register_script(_RESERVE)
        self._settle = self._client.register_script(_SETTLE)
        self._release = self._client.register_script(_RELEASE)
        self._used = self._client.register_script(_USED)
        self.timeout = timeout

    def __repr__(self) -> str:
        return "RedisBudgets(<url>)"

    def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        import redis

        try:
            return script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis budget store: {type(exc).__name__}: {exc}") from exc

    def reserve(self, hold: str, charges: tuple[Charge, ...], ttl: float) -> Optional[Refusal]:
        spec = [_spec(c) for c in charges]
        keys = _keys(b for c in charges for b in (c.bucket, *c.window))
        answer = self._run(self._reserve, keys, [json.dumps(spec), hold, ttl])
        if isinstance(answer, list):
            index, *figures = (int(v) for v in answer)
            return Refusal(index, Used(*figures))
        return None

    def settle(self, hold: str, charges: tuple[Charge, ...], actual: Used) -> None:
        unique = distinct(charges)
        spec = [{"b": _key(c.bucket), **({} if c.expires is None else {"e": c.expires})} for c in unique]
        keys = _keys(c.bucket for c in unique)
        args = [json.dumps(spec), hold, actual.calls, actual.tokens, actual.nanos, actual.unpriced]
        self._run(self._settle, keys, args)

    def release(self, hold: str, charges: tuple[Charge, ...]) -> None:
        keys = [_key(c.bucket) + ":h" for c in distinct(charges)]
        self._run(self._release, keys, [hold])

    def used(self, window: tuple[str, ...]) -> Used:
        answer = self._run(self._used, _keys(window), [_key(b) for b in window])
        return Used(*(int(v) for v in answer))

    def close(self) -> None:
        self._client.close()


def _spec(charge: Charge) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "b": _key(charge.bucket),
        "w": [_key(b) for b in charge.window],
        "t": charge.tokens,
        "n": charge.nanos,
    }
    if charge.max_tokens is not None:
        spec["mt"] = charge.max_tokens
    if charge.max_nanos is not None:
        spec["mn"] = charge.max_nanos
    return spec


def _keys(buckets: Any) -> list[str]:
    """Every key a script may touch, declared (Redis Cluster routes the script by them)."""
    keys: dict[str, None] = {}
    for bucket in buckets:
        keys[_key(bucket) + ":u"] = None
        keys[_key(bucket) + ":h"] = None
    return list(keys)
