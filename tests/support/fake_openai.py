"""A loopback stand-in for an OpenAI-compatible server, for tests that must not use the network.

Point pipecat's OpenAI services at it with ``OPENAI_BASE_URL`` (the OpenAI client reads it)
or ``base_url``. Chat completions are answered by a scripted model (``brain``: the request
body in, a :class:`FakeReply` out): streamed as server-sent events, with tool calls in
OpenAI's chunk format; a request with a JSON-schema ``response_format`` (the background
agent's constrained steps) gets the reply's text as the schema's answer step. Speech
requests get a little silence (``/audio/speech``) or no words (``/audio/transcriptions``).
Every request body is kept in :attr:`FakeOpenAI.bodies`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.support.fake_llm import FakeReply

Brain = Callable[[dict[str, Any]], FakeReply]


class FakeOpenAI:
    """``async with FakeOpenAI(brain) as server: ... server.url`` (``http://127.0.0.1:PORT/v1``)."""

    def __init__(self, brain: Brain | str = "OK.") -> None:
        self._brain: Brain = (
            (lambda body, text=brain: FakeReply(text=text)) if isinstance(brain, str) else brain
        )
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application(middlewares=[self._close_after])
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_post("/v1/audio/transcriptions", self._transcription)
        app.router.add_route("*", "/{tail:.*}", self._other)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def chat_bodies(self, model: str | None = None) -> list[dict[str, Any]]:
        """The chat requests received (for one model)."""
        return [b for b in self.bodies if "messages" in b and model in (None, b.get("model"))]

    async def _other(self, request: web.Request) -> web.Response:
        self.paths.append(f"{request.method} {request.path}")
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def _speech(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        self.bodies.append(await request.json())
        return web.Response(body=bytes(4800), content_type="application/octet-stream")

    async def _transcription(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        await request.read()
        return web.json_response({"text": ""})

    @web.middleware
    async def _close_after(self, request: web.Request, handler: Any) -> web.StreamResponse:
        # One request per connection: a client that never closes its pool (a pipecat
        # service per background job) leaves no socket open behind the test.
        response = await handler(request)
        response.force_close()
        return response

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.path)
        body = await request.json()
        self.bodies.append(body)
        reply = self._brain(body)
        model = body.get("model", "fake")
        schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
        content = reply.text
        if schema is not None:
            step = {"answer": reply.text}
            content = json.dumps({"step": step} if "step" in schema.get("properties", {}) else step)
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": f"c{next(self._ids)}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
            )
        deltas: list[tuple[dict[str, Any], str | None]] = []
        if content:
            deltas.append(({"role": "assistant", "content": content}, None))
        for i, (name, arguments) in enumerate(reply.tool_calls):
            call = {
                "index": i,
                "id": f"call_{next(self._ids)}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            deltas.append(({"role": "assistant", "tool_calls": [call]}, None))
        deltas.append(({}, "tool_calls" if reply.tool_calls else "stop"))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for delta, finish in deltas:
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response
