#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""One loaded GGUF model, shared by every local LLM service that uses it.

The runtime is ``xllamacpp``: a prebuilt wheel that embeds llama.cpp's server
(chat templates with tools, prompt-prefix cache, streaming callbacks). It is used
instead of ``llama-cpp-python`` because PyPI has no wheel of the latter for this
platform: it compiles llama.cpp from source on install (~9 minutes on 2 cores),
which every fresh machine and CI run would pay.

A :class:`LocalModelServer` loads the model once; several
:class:`~pipecat_tandem.models.local_llm.LocalLLMService` instances (the
background agent builds one pipeline per job) share it. Requests are gated per
llama.cpp slot: with one slot (the background model) they run one at a time,
which is what one pinned core can serve anyway; the interaction model gets a
slot per call the server takes, so calls speaking at once are batched together
and each keeps its own conversation in the prompt cache.

CPU placement and priority: the server is constructed in a thread of its own,
pinned with ``os.sched_setaffinity`` and reniced with ``os.setpriority``; Linux
keeps both per thread, so llama.cpp's worker threads inherit them and nothing
else does. The offline default runs the background model at nice 19 on CPU 1:
the kernel then hands its core to the interaction path whenever that path wants
it, so the interaction model can use both cores (see ``docs/bench/local.md``).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from pipecat_tandem.errors import ModelUnavailableError
from pipecat_tandem.models.weights import LOCAL_EXTRA_HINT
from pipecat_tandem.thread_pools import prestart


@dataclass(frozen=True)
class ServerConfig:
    """How to load a GGUF model.

    Parameters:
        model_path: The ``.gguf`` file.
        n_threads: llama.cpp threads for generation and prompt processing.
        cpus: CPUs to pin llama.cpp's threads to (``None`` = no pinning). CPUs
            this process may not use are dropped; if none is left, no pinning.
        n_ctx: Context length in tokens.
        name: Short name for logs ("interaction", "background").
        nice: Niceness of llama.cpp's threads (0-19; 19 = runs only on CPU time
            nothing else wants).
        slots: Requests served at once, each in a llama.cpp slot of its own
            with ``n_ctx`` tokens of cache (one call's conversation stays
            cached while another call's turn runs). With one slot, requests
            are served one at a time.
        prompt_cache_mib: Host memory llama.cpp may keep for the prompt states of
            requests a slot has moved on from (its ``--cache-ram``; 0 = off).
            llama.cpp's default is 8 GiB: every call's conversation was copied
            there when its slot took the next call, ~2 MB a conversation on the
            0.5B, kept while the server lived (issue 13). A call keeps its own
            conversation in its slot, and a new call still reuses the system
            prompt's prefix from the slot, so the copy buys a voice server nothing.
        spare_slot_tokens: Tokens of one more slot, kept for short side requests
            (``stream_chat(..., spare=True)``: the interaction's second opinion on
            the background model; 0 = none; only beside a single slot). Sharing
            the one slot, a second opinion evicted the background's cached step
            prompt, and the next job read its ~1,300 tokens again: 29.7 s on its
            nice-19 core, against 0.8 s with the prompt kept (docs/benchmarks.md).
    """

    model_path: Path
    n_threads: int = 1
    cpus: frozenset[int] | None = None
    n_ctx: int = 4096
    name: str = "local"
    nice: int = 0
    slots: int = 1
    prompt_cache_mib: int = 0
    spare_slot_tokens: int = 0

    def __post_init__(self) -> None:
        if self.n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {self.n_threads}")
        if not 1 <= self.slots <= 16:
            raise ValueError(f"slots must be in 1..16, got {self.slots}")
        if not 0 <= self.nice <= 19:
            raise ValueError(f"nice must be in 0..19, got {self.nice}")
        if self.prompt_cache_mib < 0:
            raise ValueError(f"prompt_cache_mib must be >= 0, got {self.prompt_cache_mib}")
        if self.n_ctx < 256:
            raise ValueError(f"n_ctx must be >= 256, got {self.n_ctx}")
        if self.spare_slot_tokens < 0 or 0 < self.spare_slot_tokens < 256:
            raise ValueError(f"spare_slot_tokens must be 0 or >= 256, got {self.spare_slot_tokens}")
        if self.spare_slot_tokens and self.slots != 1:
            raise ValueError("a spare slot is kept beside a single slot only (slots=1)")

    @property
    def parallel(self) -> int:
        """llama.cpp slots: the request slots and the spare one, if any."""
        return self.slots + (1 if self.spare_slot_tokens else 0)


class _Request:
    """One in-flight request: a cancel flag the llama.cpp thread checks per token."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()


#: Every model server of this process (for the server's /metrics page).
_SERVERS: weakref.WeakSet[LocalModelServer] = weakref.WeakSet()


def model_queue_depth() -> dict[str, int]:
    """Requests waiting for or running on each loaded model of this process, by model name."""
    depth: dict[str, int] = {}
    for server in list(_SERVERS):
        name = server.config.name
        depth[name] = depth.get(name, 0) + server.in_flight
    return depth


class LocalModelServer:
    """A loaded xllamacpp server with a per-slot request gate and an asyncio streaming API.

    Example::

        server = LocalModelServer(ServerConfig(model_path=path, cpus=frozenset({0})))
        await server.start()
        async for chunk in server.stream_chat({"messages": [...], "max_tokens": 60}):
            ...
    """

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._server: Any = None
        self._load_lock = threading.Lock()
        # One request per slot at a time. With several slots llama.cpp batches
        # the requests' tokens together (measured: two calls' turns at once
        # 0.5-1.0 s each, against 1-6 s queued one behind the other on one
        # slot, where each turn also re-read its whole conversation).
        self._request_gate = threading.BoundedSemaphore(config.slots)
        self._spare_gate = threading.BoundedSemaphore(1)
        self._ready = threading.Event()
        # Own threads for blocking calls: requests queued on the lock must not
        # starve the loop's default executor (STT and TTS run there). Two per
        # slot: one running, one waiting for it (a call's next turn, a cache
        # refill, a cancelled request still finishing its prompt); more would
        # only wait on the gate. All are started at warm-up (thread_pools):
        # a pool that grew on the first calls read as a leak in the soak.
        self._executor = ThreadPoolExecutor(
            max_workers=2 * config.parallel, thread_name_prefix=f"tandem-{config.name}"
        )
        self._threads_started = False
        self.load_seconds: float | None = None
        self._in_flight_lock = threading.Lock()  # changed from several executor threads
        self._live: set[_Request] = set()  # requests queued on the gate or running
        _SERVERS.add(self)

    @property
    def config(self) -> ServerConfig:
        """The load configuration."""
        return self._config

    @property
    def in_flight(self) -> int:
        """Requests queued on the request gate or running (read by /metrics)."""
        return len(self._live)

    @property
    def busy(self) -> int:
        """In-flight requests someone still waits for: :attr:`in_flight` less the cancelled.

        A cancelled request holds its slot until llama.cpp next reports a token (within
        one token; at the end of its prompt if cancelled while reading it), but nobody
        needs its answer: a request asked now waits for that, not for a whole job.
        """
        with self._in_flight_lock:
            return sum(1 for r in self._live if not r.cancelled.is_set())

    @property
    def ready(self) -> bool:
        """Whether the model is loaded (and warmed, if :meth:`warm` was awaited)."""
        return self._ready.is_set()

    def load(self) -> None:
        """Load the model (blocking; idempotent). Use :meth:`start` from asyncio.

        Raises:
            ModelUnavailableError: The runtime is not installed or the file is unusable.
        """
        with self._load_lock:
            if self._server is not None:
                return
            if not Path(self._config.model_path).is_file():
                raise ModelUnavailableError(
                    f"model file {self._config.model_path} does not exist; "
                    "assemble it with pipecat_tandem.models.weights.ensure_model()"
                )
            try:
                import xllamacpp  # noqa: F401  (checked here for a clear message)
            except ImportError as e:
                raise ModelUnavailableError(
                    f"the GGUF runtime xllamacpp is not installed; install `{LOCAL_EXTRA_HINT}`"
                ) from e
            started = time.perf_counter()
            box: dict[str, Any] = {}
            # Constructed in its own thread: the affinity set there is inherited
            # by the llama.cpp threads the constructor spawns, and only by them.
            thread = threading.Thread(
                target=self._construct, args=(box,), name=f"xllamacpp-{self._config.name}"
            )
            thread.start()
            thread.join()
            if "error" in box:
                raise ModelUnavailableError(
                    f"could not load {self._config.model_path.name}: {box['error']}"
                ) from box["error"]
            self._server = box["server"]
            self.load_seconds = time.perf_counter() - started
            logger.debug(
                f"{self._config.name}: loaded {self._config.model_path.name} in "
                f"{self.load_seconds:.2f} s ({self._config.n_threads} thread(s), "
                f"cpus={sorted(self._config.cpus) if self._config.cpus else 'any'}, "
                f"nice {self._config.nice})"
            )

    def _construct(self, box: dict[str, Any]) -> None:
        try:
            import xllamacpp as xlc

            cpus = _usable_cpus(self._config.cpus)
            if cpus:
                os.sched_setaffinity(0, cpus)  # 0 = this thread only
            if self._config.nice:
                # Raising niceness needs no privilege; on Linux it applies to
                # this thread, and the threads it creates inherit it.
                os.setpriority(os.PRIO_PROCESS, 0, self._config.nice)
            params = xlc.CommonParams()
            params.model.path = str(self._config.model_path)
            slots = self._config.slots
            # n_ctx is split between the slots unless the cache is unified:
            # unified, every slot may hold up to n_ctx tokens of its call.
            params.n_ctx = self._config.n_ctx * slots + self._config.spare_slot_tokens
            params.n_parallel = self._config.parallel
            params.kv_unified = self._config.parallel > 1
            params.offline = True  # never let llama.cpp reach for a hub
            params.cache_ram_mib = self._config.prompt_cache_mib
            params.cpuparams.n_threads = self._config.n_threads
            params.cpuparams_batch.n_threads = self._config.n_threads
            params.verbosity = 0
            box["server"] = xlc.Server(params)
        except Exception as e:  # reported by load() with the model name
            box["error"] = e

    def _count(self, delta: int, request: _Request) -> None:
        with self._in_flight_lock:
            if delta > 0:
                self._live.add(request)
            else:
                self._live.discard(request)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def start(self) -> None:
        """Load the model off the event loop and start the request threads (idempotent)."""
        await self._call(self.load)
        await self._start_threads()
        self._ready.set()

    async def _start_threads(self) -> None:
        if not self._threads_started:
            self._threads_started = await prestart(self._executor)

    async def warm(self, messages: list[dict[str, Any]] | None = None) -> None:
        """Load, then run one tiny request so the first real turn is not cold.

        Args:
            messages: A prompt to prefill (e.g. the real system prompt, so its
                tokens are in the prompt cache); a short default otherwise.
        """
        await self._call(self.load)
        warm_messages = messages or [{"role": "user", "content": "Hello."}]
        await self._call(
            self.complete, {"messages": warm_messages, "max_tokens": 1, "temperature": 0}
        )
        await self._start_threads()
        self._ready.set()

    async def complete_async(self, request: dict[str, Any]) -> dict[str, Any]:
        """:meth:`complete` off the event loop."""
        result: dict[str, Any] = await self._call(self.complete, request)
        return result

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one non-streamed chat completion (blocking).

        Raises:
            RuntimeError: The runtime reported an error for the request.
        """
        self.load()
        body = self._pinned(
            {k: v for k, v in request.items() if k not in ("stream", "stream_options")}
        )
        handle = _Request()
        self._count(1, handle)
        try:
            with self._request_gate:
                response = self._server.handle_chat_completions(body)
        finally:
            self._count(-1, handle)
        return _check_response(response)

    def _pinned(self, body: dict[str, Any], *, spare: bool = False) -> dict[str, Any]:
        """``body`` pinned to the request slot, or to the spare one, when there is one."""
        if not self._config.spare_slot_tokens:
            return body
        return {**body, "id_slot": self._config.slots if spare else 0}

    async def stream_chat(
        self, request: dict[str, Any], *, spare: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream one chat completion as OpenAI ``chat.completion.chunk`` dicts.

        Closing the iterator early (or cancelling the task that iterates it)
        stops generation within one token: the llama.cpp callback returns True.

        Args:
            request: The chat completion request.
            spare: Run in the spare slot (see ``ServerConfig.spare_slot_tokens``),
                leaving the request slot's cached prompt alone; without a spare
                slot, the request slot.

        Raises:
            RuntimeError: The runtime reported an error for the request.
        """
        await self._call(self.load)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        done = object()
        handle = _Request()

        def on_chunk(chunk: Any) -> bool:  # runs on llama.cpp's thread
            if handle.cancelled.is_set():
                return True
            try:
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except RuntimeError:  # the loop is gone: nobody is listening
                return True
            return False

        spare = spare and self._config.spare_slot_tokens > 0
        body = self._pinned({**request, "stream": True}, spare=spare)
        gate = self._spare_gate if spare else self._request_gate
        future = loop.run_in_executor(
            self._executor, self._run_stream, body, on_chunk, handle, gate
        )
        future.add_done_callback(lambda _: queue.put_nowait(done))
        try:
            while (chunk := await queue.get()) is not done:
                if isinstance(chunk, dict):
                    if "error" in chunk:
                        raise RuntimeError(f"{self._config.name}: {chunk['error']}")
                    yield chunk
            result = await future
            _check_response(result)
        finally:
            handle.cancelled.set()
            if not future.done():
                # Let the thread see the flag and release the lock; no await
                # needed for correctness, so a cancelled caller is not delayed.
                future.add_done_callback(_drain_exception)

    def _run_stream(
        self,
        body: dict[str, Any],
        on_chunk: Callable[[Any], bool],
        handle: _Request,
        gate: threading.BoundedSemaphore,
    ) -> Any:
        self._count(1, handle)
        asked = time.monotonic()
        try:
            with gate:
                if handle.cancelled.is_set():
                    return None
                waited = time.monotonic() - asked
                if waited > 1.0:  # a request behind another one: the first place to look
                    logger.debug(f"{self._config.name}: a request waited {waited:.1f} s for a slot")
                return self._server.handle_chat_completions(body, on_chunk)
        finally:
            self._count(-1, handle)


def _usable_cpus(cpus: frozenset[int] | None) -> set[int]:
    if not cpus:
        return set()
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return set()
    return set(cpus) & allowed


def _check_response(response: Any) -> dict[str, Any]:
    if response is None:
        return {}
    if isinstance(response, dict):
        if "error" in response and "choices" not in response:
            error = response["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise RuntimeError(f"local model error: {message}")
        return response
    return {"content": response}


def _drain_exception(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # mark retrieved: a cancelled stream's error is moot
