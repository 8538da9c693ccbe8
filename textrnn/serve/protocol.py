"""Requests and responses in the Hugging Face Inference API shapes, checked without torch.

    {"inputs": "text" | ["text", ...], "parameters": {...}, "options": {...}}

Token classification answers ``[{"entity_group", "score", "word", "start", "end"}]`` per input;
text classification ``[{"label", "score"}]`` per input, best first. A list of inputs gets a list
of answers. Anything else is a ``RequestError`` whose message says what was expected.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

TOKEN_CLASSIFICATION = "token-classification"
TEXT_CLASSIFICATION = "text-classification"
EXAMPLE = '{"inputs": "George Washington went to Washington.", "parameters": {}}'
TOP_LEVEL = ("inputs", "parameters", "options")
OPTIONS = ("wait_for_model", "use_cache")  # the hosted API's options; accepted, no effect here


class RequestError(Exception):
    """A bad request: the HTTP status and a message that says what was expected."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Request:
    texts: List[str]
    single: bool  # "inputs" was one string: answer with one result, not a list of one
    params: Dict[str, Any]


def _aggregation(value: Any) -> Any:
    if value not in ("simple", "none"):
        raise RequestError(422, f"parameters.aggregation_strategy must be \"simple\" (entity spans) or "
                                f"\"none\" (one entry per tagged token); got {json.dumps(value)}")
    return value


def _top_k(value: Any) -> Any:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise RequestError(422, f"parameters.top_k must be a whole number of at least 1, or null for every "
                                f"label; got {json.dumps(value)}")
    return value


# per task: parameter name -> (checker, default)
PARAMETERS: Dict[str, Dict[str, "tuple[Callable[[Any], Any], Any]"]] = {
    TOKEN_CLASSIFICATION: {"aggregation_strategy": (_aggregation, "simple")},
    TEXT_CLASSIFICATION: {"top_k": (_top_k, 1)},
}


def decode_json(body: bytes) -> Any:
    """The request body as JSON, or a 400 that shows the expected shape."""
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise RequestError(400, f"expected a UTF-8 JSON body like {EXAMPLE}; byte {err.start} is not UTF-8")
    except json.JSONDecodeError as err:
        raise RequestError(400, f"expected a JSON body like {EXAMPLE}; line {err.lineno} column {err.colno}: "
                                f"{err.msg}") from None


def parse_request(payload: Any, task: str, max_input_chars: int,
                  defaults: Optional[Dict[str, Any]] = None) -> Request:
    """Check a decoded body against the task's shape; absent parameters get the task's defaults,
    or the model's where ``defaults`` names them (a multi-label classifier: ``top_k`` None)."""
    if not isinstance(payload, dict):
        raise RequestError(422, f"expected a JSON object like {EXAMPLE}; got a {_kind(payload)}")
    unknown = sorted(set(payload) - set(TOP_LEVEL))
    if unknown:
        raise RequestError(422, f"unknown field(s) {_names(unknown)}; expected \"inputs\" and optionally "
                                f"\"parameters\" and \"options\"")
    if "inputs" not in payload:
        raise RequestError(422, f"missing \"inputs\": expected a string or a list of strings, as in {EXAMPLE}")
    texts, single = _inputs(payload["inputs"], max_input_chars)
    params = _parameters(payload.get("parameters"), task, defaults or {})
    options = payload.get("options")
    if options is not None:
        if not isinstance(options, dict):
            raise RequestError(422, f"\"options\" must be an object; got a {_kind(options)}")
        bad = sorted(set(options) - set(OPTIONS))
        if bad:
            raise RequestError(422, f"unknown option(s) {_names(bad)}; this server knows {_names(OPTIONS)}")
    return Request(texts, single, params)


def _inputs(inputs: Any, max_input_chars: int):
    if isinstance(inputs, str):
        texts, single = [inputs], True
    elif isinstance(inputs, list):
        texts, single = inputs, False
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise RequestError(422, f"inputs[{i}] is a {_kind(text)}; expected a string")
    else:
        raise RequestError(422, f"\"inputs\" must be a string or a list of strings; got a {_kind(inputs)}")
    for i, text in enumerate(texts):
        if len(text) > max_input_chars:
            where = "inputs" if single else f"inputs[{i}]"
            raise RequestError(413, f"{where} has {len(text)} characters; this server takes at most "
                                    f"{max_input_chars} per input (--max-input-chars)")
    return list(texts), single


def _parameters(parameters: Optional[Any], task: str, defaults: Dict[str, Any]) -> Dict[str, Any]:
    known = PARAMETERS[task]
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise RequestError(422, f"\"parameters\" must be an object; got a {_kind(parameters)}")
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise RequestError(422, f"unknown parameter(s) {_names(unknown)} for {task}; this server takes "
                                f"{_names(known)}")
    return {name: check(parameters[name]) if name in parameters else defaults.get(name, default)
            for name, (check, default) in known.items()}


def _kind(value: Any) -> str:
    names = {dict: "JSON object", list: "list", str: "string", bool: "boolean", int: "number",
             float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _names(names) -> str:
    return ", ".join(f'"{n}"' for n in names)
