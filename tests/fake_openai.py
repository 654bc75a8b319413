"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for tests: plain and streamed replies."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMPLETIONS_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a chat completion (status 200), an error status, a slow answer or a dropped line."""

    status: int = 200
    message: dict[str, Any] = field(default_factory=dict)
    """The assistant message of a completion (role, content, tool_calls)."""
    error: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    disconnect: bool = False
    usage: dict[str, int] | None = None
    """Token counts to report; None means counted from the request, {} means none reported."""
    finish_reason: str = ""
    """Empty means 'tool_calls' or 'stop' as the message implies; 'length' plays an answer cut short."""


Responder = Callable[[dict[str, Any]], Reply]


def tool_call(name: str, arguments: dict[str, Any] | str, call_id: str = "") -> dict[str, Any]:
    """A tool call as the API sends it (arguments are a JSON string, possibly a malformed one)."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": call_id or f"call_{uuid.uuid4().hex[:10]}",
        "type": "function",
        "function": {"name": name, "arguments": text},
    }


def calls(*tool_calls: dict[str, Any], content: str | None = None) -> Reply:
    """A completion whose assistant message makes these tool calls."""
    return Reply(message={"role": "assistant", "content": content, "tool_calls": list(tool_calls)})


def text(content: str) -> Reply:
    """A completion with a plain text answer and no tool call."""
    return Reply(message={"role": "assistant", "content": content})


def failure(status: int, message: str = "scripted failure", headers: dict[str, str] | None = None) -> Reply:
    """An error response with the API's error body."""
    return Reply(status=status, error=message, headers=headers or {})


def prompt_chars(request: dict[str, Any]) -> int:
    """The size of what a request asks the model to read: every message and every tool definition, as JSON."""
    return len(json.dumps(request.get("messages", []), ensure_ascii=False)) + len(
        json.dumps(request.get("tools", []), ensure_ascii=False)
    )


def counted_usage(request: dict[str, Any], message: dict[str, Any]) -> dict[str, int]:
    """The token counts this server reports: a rough four characters per token of the prompt and the answer."""
    prompt = prompt_chars(request) // 4 + 7
    completion = len(json.dumps(message, ensure_ascii=False)) // 4 + 1
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def protocol_error(request: dict[str, Any]) -> str:
    """What the real API would reject with a 400: unanswered or orphan tool calls, tool_choice without tools."""
    if not isinstance(request.get("messages"), list) or not request["messages"]:
        return "'messages' must be a non-empty array"
    if request.get("tool_choice") and not request.get("tools"):
        return "'tool_choice' is only allowed when 'tools' are specified"
    pending: set[str] = set()
    for message in request["messages"]:
        role = message.get("role")
        if role == "tool":
            if message.get("tool_call_id") not in pending:
                return "messages with role 'tool' must be a response to a preceding message with 'tool_calls'"
            pending.discard(message["tool_call_id"])
            continue
        if pending:
            return "an assistant message with 'tool_calls' must be followed by tool messages responding to each"
        if role == "assistant":
            pending = {call["id"] for call in message.get("tool_calls") or []}
    return ""


class FakeOpenAI:
    """The server: replies come from a queue first, then from a responder function of the request."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reported: list[dict[str, int]] = []
        self.headers: list[dict[str, str]] = []
        self._queue: deque[Reply] = deque()
        self._responder = responder
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def respond_with(self, responder: Responder) -> None:
        self._responder = responder

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def start(self) -> FakeOpenAI:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def record(self, request: dict[str, Any], headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(request)
            self.headers.append(headers)

    def next_reply(self, request: dict[str, Any]) -> Reply:
        """The queued reply, else the responder's."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self._responder is None:
            return failure(500, "no scripted reply left")
        return self._responder(request)

    def record_usage(self, usage: dict[str, int]) -> None:
        with self._lock:
            self.reported.append(usage)


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeOpenAI/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        """Quiet: tests read the recorded requests, not an access log."""

    def do_POST(self) -> None:
        fake: FakeOpenAI = self.server.fake  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != COMPLETIONS_PATH:
            self._send_json(404, _error_body(f"unknown path {self.path}", "not_found"))
            return
        if not (self.headers.get("Authorization") or "").startswith("Bearer "):
            self._send_json(401, _error_body("missing API key", "invalid_api_key"))
            return
        try:
            request = json.loads(body)
        except json.JSONDecodeError:
            self._send_json(400, _error_body("body is not JSON", "invalid_request_error"))
            return
        fake.record(request, {key.lower(): value for key, value in self.headers.items()})
        problem = protocol_error(request)
        if problem:
            self._send_json(400, _error_body(problem, "invalid_request_error"))
            return
        self._play(fake, request, fake.next_reply(request))

    def _play(self, fake: FakeOpenAI, request: dict[str, Any], reply: Reply) -> None:
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.disconnect:
            self.close_connection = True
            return
        if reply.status != 200:
            self._send_json(reply.status, _error_body(reply.error, "server_error"), reply.headers)
            return
        message = {"role": "assistant", "content": None, **reply.message}
        usage = counted_usage(request, message) if reply.usage is None else reply.usage
        if usage:
            fake.record_usage(usage)
        try:
            if request.get("stream"):
                include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
                self._send_stream(request, message, usage if include_usage else {}, _finish(reply))
            else:
                self._send_json(200, _completion(request, message, usage, _finish(reply)), reply.headers)
        except OSError:
            pass  # the client gave up (timeout): nothing to answer

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(
        self, request: dict[str, Any], message: dict[str, Any], usage: dict[str, int], finish: str
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        for chunk in _chunks(message, usage, finish):
            envelope = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": request.get("model", ""),
                **chunk,
            }
            self.wfile.write(f"data: {json.dumps(envelope)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


def _finish(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.message.get("tool_calls") else "stop")


def _completion(request: dict[str, Any], message: dict[str, Any], usage: dict[str, int], finish: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", ""),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
    }
    if usage:
        payload["usage"] = usage
    return payload


def _chunks(message: dict[str, Any], usage: dict[str, int], finish: str) -> Iterator[dict[str, Any]]:
    """The message as streamed deltas: role, content in two pieces, each tool call's name then its arguments
    in two pieces, the finish reason, and the usage chunk when the client asked for it."""
    yield _delta({"role": "assistant", "content": ""})
    content = message.get("content") or ""
    for piece in (content[: len(content) // 2], content[len(content) // 2 :]):
        if piece:
            yield _delta({"content": piece})
    for index, call in enumerate(message.get("tool_calls") or []):
        yield _delta(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""},
                    }
                ]
            }
        )
        arguments = call["function"]["arguments"]
        for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
            yield _delta({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    if usage:
        yield {"choices": [], "usage": usage}


def _delta(delta: dict[str, Any]) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def _error_body(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}
