"""Tool calls a model wrote as text: read strictly, validated against the offered tools, or not at all.

Small instruct models behind an OpenAI-compatible server often write the call as JSON in the message text instead
of in the server's tool-call syntax, so the server returns it as content. Accepted forms, each the whole message
(surrounding white space aside) and naming exactly one offered tool:

- a bare JSON object: {"name": "restart_service", "arguments": {"server_id": "web-01"}} (also "parameters" or
  "args" for the arguments, "tool" or "function" for the name, or {"function": {"name": ..., "arguments": ...}});
- the same object in one Markdown code fence (```json ... ```);
- the same object in one <tool_call>...</tool_call> element (the Hermes/Qwen template's own syntax).

Anything else (prose around the object, two objects, an unknown tool, arguments the tool does not take or of the
wrong type, a missing required argument) is no call: the node then treats the turn as a model that made none.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.messages.tool import ToolCall
from langchain_core.utils.function_calling import convert_to_openai_tool

MAX_TEXT_CALL_CHARS = 8_000
"""A longer answer is not read as a call: a decision or a diagnosis call is a few hundred characters."""

_FENCE = re.compile(r"\A```(?:json|JSON|tool_call)?[ \t]*\n(?P<body>.*?)\n?```\Z", re.DOTALL)
_TAGGED = re.compile(r"\A<tool_call>\s*(?P<body>.*?)\s*</tool_call>\Z", re.DOTALL)
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def tool_schemas(tools: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Each offered tool's name and the JSON schema of its arguments, as the model was shown them."""
    schemas: dict[str, dict[str, Any]] = {}
    for item in tools:
        function = convert_to_openai_tool(item)["function"]
        schemas[str(function["name"])] = dict(function.get("parameters") or {})
    return schemas


def call_in_text(content: str, tools: Sequence[Any]) -> ToolCall | None:
    """The one offered tool call the text is, or None."""
    text = content.strip()
    if not text or len(text) > MAX_TEXT_CALL_CHARS:
        return None
    for pattern in (_FENCE, _TAGGED):
        match = pattern.match(text)
        if match:
            text = match.group("body").strip()
            break
    if not text.startswith("{"):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    name, arguments = _name_and_arguments(document)
    if name is None or arguments is None:
        return None
    schema = tool_schemas(tools).get(name)
    if schema is None or not arguments_fit(arguments, schema):
        return None
    return ToolCall(name=name, args=arguments, id=f"call_text_{uuid.uuid4().hex[:12]}", type="tool_call")


def with_text_call(response: AIMessage, tools: Sequence[Any]) -> tuple[AIMessage, str]:
    """The response with the call its text holds made a real tool call (and the text cleared), and a note; the
    response unchanged when it already has calls, a malformed call, or text that is no call."""
    if response.tool_calls or response.invalid_tool_calls or not isinstance(response.content, str):
        return response, ""
    call = call_in_text(response.content, tools)
    if call is None:
        return response, ""
    parsed = response.model_copy(update={"tool_calls": [call], "content": ""})
    return parsed, f"the model wrote its {call['name']} call as text; it was read as that call"


def arguments_fit(arguments: Mapping[str, Any], schema: Mapping[str, Any]) -> bool:
    """The arguments are exactly what the schema takes: required ones present, no others, each of its type."""
    properties = schema.get("properties") or {}
    if not isinstance(properties, Mapping):
        return False
    required = schema.get("required") or []
    if any(key not in arguments for key in required) or any(key not in properties for key in arguments):
        return False
    return all(_fits(value, properties[key]) for key, value in arguments.items())


def _fits(value: Any, schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    kind = schema.get("type")
    if kind is None:
        options = schema.get("anyOf") or schema.get("oneOf")
        return isinstance(options, list) and any(_fits(value, option) for option in options)
    if kind == "null":
        return value is None
    allowed = _JSON_TYPES.get(str(kind))
    if allowed is None or not isinstance(value, allowed):
        return False
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    if isinstance(value, list):
        items = schema.get("items")
        return items is None or all(_fits(item, items) for item in value)
    return True


def _name_and_arguments(document: Mapping[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """The tool name and arguments of one call object, in the shapes models write."""
    function = document.get("function")
    if isinstance(function, Mapping) and set(document) <= {"function", "type", "id"}:
        document = function
    name = next((document[key] for key in ("name", "tool", "function") if isinstance(document.get(key), str)), None)
    keys = [key for key in ("arguments", "parameters", "args") if key in document]
    if len(keys) > 1 or set(document) - {"name", "tool", "function", "type", "id", *keys}:
        return None, None
    arguments: Any = document[keys[0]] if keys else {}
    if isinstance(arguments, str):  # the API's own form: arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None, None
    return (name, arguments) if isinstance(arguments, dict) else (None, None)
