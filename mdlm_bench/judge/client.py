"""Async OpenAI-compatible chat client for judging: bounded concurrency, own retries, response cache.

The openai client's built-in retries are off (max_retries=0); this module retries 429, 5xx, 408/409,
timeouts, connection errors and malformed bodies with exponential backoff and full jitter, honouring
Retry-After. A request that still fails raises JudgeRequestError; the caller records it as a failure.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import urlparse

from mdlm_bench.errors import UserError
from mdlm_bench.judge.cache import ResponseCache, request_key
from mdlm_bench.judge.config import JudgeConfig

RETRYABLE_STATUS = {408, 409, 429}


class JudgeRequestError(Exception):
    """A request that failed for good (non-retryable status, or retries exhausted)."""


class MalformedResponse(Exception):
    pass


@dataclass
class Completion:
    text: str
    top_logprobs: Optional[List[List[Any]]]  # [[token, logprob], ...] at the first generated token
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False

    def to_cache(self) -> Dict[str, Any]:
        return {"text": self.text, "top_logprobs": self.top_logprobs,
                "usage": {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}}

    @classmethod
    def from_cache(cls, entry: Dict[str, Any]) -> "Completion":
        usage = entry.get("usage") or {}
        return cls(entry["text"], entry.get("top_logprobs"), int(usage.get("prompt_tokens", 0)),
                   int(usage.get("completion_tokens", 0)), cached=True)


@dataclass
class UsageStats:
    requests: int = 0  # HTTP requests sent (retries included)
    retries: int = 0
    cache_hits: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: Dict[str, int] = field(default_factory=dict)

    def cost(self, cfg: JudgeConfig) -> Optional[float]:
        if cfg.price_in_per_m <= 0 and cfg.price_out_per_m <= 0:
            return None
        return (self.prompt_tokens * cfg.price_in_per_m + self.completion_tokens * cfg.price_out_per_m) / 1e6

    def describe(self, cfg: JudgeConfig) -> str:
        cost = self.cost(cfg)
        money = f"estimated cost ${cost:.4f}" if cost is not None else \
            "estimated cost unknown (set --price-in/--price-out, USD per 1M tokens)"
        return (f"judge usage: {self.requests} requests sent ({self.retries} retries, {self.cache_hits} answered "
                f"from cache, {self.failures} failed), {self.prompt_tokens} prompt + {self.completion_tokens} "
                f"completion tokens; {money}")

    def as_dict(self, cfg: JudgeConfig) -> Dict[str, Any]:
        return {"requests": self.requests, "retries": self.retries, "cache_hits": self.cache_hits,
                "failures": self.failures, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "errors": dict(self.errors),
                "estimated_cost_usd": self.cost(cfg)}


def check_reachable(base_url: str, timeout_s: float = 5.0) -> None:
    """Fail fast, naming the URL, when nothing listens at the endpoint."""
    import socket

    url = urlparse(base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise UserError(f"judge endpoint '{base_url}' is not an http(s) URL; pass e.g. --judge-base-url "
                        f"http://localhost:8000/v1")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout_s):
            pass
    except OSError as e:
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise UserError(f"cannot reach the judge endpoint {base_url} ({reason}); check --judge-base-url and "
                        f"that the server is running") from None


def retry_after_seconds(headers: Any) -> Optional[float]:
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


def backoff_delay(attempt: int, cfg: JudgeConfig, retry_after: Optional[float], rng: random.Random) -> float:
    if retry_after is not None:
        return min(retry_after, cfg.retry_after_max_s)
    return rng.uniform(0.0, min(cfg.backoff_max_s, cfg.backoff_base_s * (2 ** attempt)))


def parse_body(body: str) -> Completion:
    """A chat-completions JSON body -> Completion; anything malformed raises MalformedResponse."""
    try:
        data = json.loads(body)
    except ValueError:
        raise MalformedResponse("HTTP 200 but the body is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise MalformedResponse("HTTP 200 but the JSON has no 'choices' list")
    if not data["choices"]:
        raise MalformedResponse("HTTP 200 but 'choices' is empty")
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"]
        if not isinstance(text, str):
            raise TypeError("content is not a string")
        top = None
        content = (choice.get("logprobs") or {}).get("content")
        if content:
            top = [[str(t["token"]), float(t["logprob"])] for t in (content[0].get("top_logprobs") or [])]
        usage = data.get("usage") or {}
        return Completion(text, top, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise MalformedResponse(f"{type(e).__name__}: {str(e)[:80]}") from None


class JudgeClient:
    """Use inside one event loop: ``async with JudgeClient(cfg, cache) as c: await c.complete(...)``."""

    def __init__(self, cfg: JudgeConfig, cache: Optional[ResponseCache], seed: int = 0,
                 sleep: Callable[[float], Any] = asyncio.sleep, api_key: Optional[str] = None):
        import openai

        self.cfg = cfg
        self.cache = cache
        self.stats = UsageStats()
        self._openai = openai
        self._client = openai.AsyncOpenAI(base_url=cfg.base_url, api_key=api_key or cfg.api_key(), max_retries=0,
                                          timeout=cfg.timeout_s)
        self._sem = asyncio.Semaphore(cfg.concurrency)
        self._rng = random.Random(seed)
        self._sleep = sleep

    async def __aenter__(self) -> "JudgeClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self._client.close()

    def key(self, messages: List[Dict[str, Any]], params: Dict[str, Any]) -> str:
        return request_key(self.cfg.model, messages, params)

    def cached(self, messages: List[Dict[str, Any]], params: Dict[str, Any]) -> Optional[Completion]:
        if self.cache is None:
            return None
        entry = self.cache.get(self.key(messages, params))
        return Completion.from_cache(entry) if entry is not None else None

    async def complete(self, messages: List[Dict[str, Any]], params: Dict[str, Any]) -> Completion:
        key = self.key(messages, params)
        entry = self.cache.get(key) if self.cache is not None else None
        if entry is not None:
            self.stats.cache_hits += 1
            return Completion.from_cache(entry)
        openai = self._openai
        last = "no attempt made"
        for attempt in range(self.cfg.max_retries + 1):
            retry_after = None
            try:
                async with self._sem:
                    self.stats.requests += 1
                    # post() rather than chat.completions.create(): the messages are plain JSON already, and
                    # create()'s per-call parameter transform costs more CPU than the rest of a request
                    body = await self._client.post("/chat/completions", cast_to=str,
                                                   body={"model": self.cfg.model, "messages": messages, **params})
                result = parse_body(body)
                self.stats.prompt_tokens += result.prompt_tokens
                self.stats.completion_tokens += result.completion_tokens
                if self.cache is not None:  # file creation is slow on some disks: keep it off the event loop
                    await asyncio.to_thread(self.cache.put, key, result.to_cache())
                return result
            except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
                raise UserError(f"the judge endpoint {self.cfg.base_url} rejected the key in "
                                f"{self.cfg.api_key_env} (HTTP {e.status_code}); export a valid key") from None
            except openai.NotFoundError:
                raise UserError(f"the judge endpoint {self.cfg.base_url} answered 404 for model "
                                f"'{self.cfg.model}'; check --judge-model and --judge-base-url") from None
            except openai.APIStatusError as e:
                last = f"HTTP {e.status_code}"
                if e.status_code < 500 and e.status_code not in RETRYABLE_STATUS:
                    self._count(last)
                    self.stats.failures += 1
                    raise JudgeRequestError(f"{last}: {str(e)[:200]}") from None
                retry_after = retry_after_seconds(getattr(e.response, "headers", None))
            except openai.APITimeoutError:
                last = "timeout"
            except openai.APIConnectionError:
                last = "connection error"
            except MalformedResponse as e:
                last = f"malformed response: {e}"
            except openai.APIResponseValidationError as e:
                last = f"malformed response ({type(e).__name__})"
            self._count(last)
            if attempt < self.cfg.max_retries:
                self.stats.retries += 1
                await self._sleep(backoff_delay(attempt, self.cfg, retry_after, self._rng))
        self.stats.failures += 1
        raise JudgeRequestError(f"gave up after {self.cfg.max_retries + 1} attempts; last error: {last}")

    def _count(self, what: str) -> None:
        self.stats.errors[what] = self.stats.errors.get(what, 0) + 1
