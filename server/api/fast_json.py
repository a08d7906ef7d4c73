"""JSON in and out with msgspec where it gives the same values as the standard library.

Request bodies: every JSON document msgspec reads, it reads to the same Python values as
`json.loads`; anything it refuses (a byte-order mark, NaN, 1e400, a lone surrogate, bad
JSON) goes to the standard library, which decides as before. Responses: only views marked
`@fast_json`, whose answers are already plain JSON values dumped by their schema, are
written by msgspec (sorted keys, as Flask writes them; text as UTF-8 rather than \\u
escapes, the same JSON). Any other answer keeps Flask's writer, which turns a datetime into
an HTTP date where msgspec would write ISO 8601. Bodies parsed by webargs (`FastJSONBody`)
are read the same way: webargs reads them with the standard library on its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import msgspec
from flask import Response, g
from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import is_json_request

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder(order="sorted").encode


class FastJSONProvider(DefaultJSONProvider):
    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if not kwargs:
            try:
                return _decode(s)
            except msgspec.MsgspecError:
                pass  # the standard library decides, and words the error
        return super().loads(s, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        if not g.get("fast_json") or self._app.debug or self.compact is False:
            return super().response(*args, **kwargs)
        obj = self._prepare_response_obj(args, kwargs)
        try:
            body = _encode(obj)
        except (TypeError, msgspec.MsgspecError):
            return super().response(*args, **kwargs)
        return self._app.response_class(body + b"\n", mimetype=self.mimetype)


class FastJSONBody:
    """Mixin for a webargs FlaskParser: a JSON body is read by msgspec, as FastJSONProvider
    reads one (webargs calls json.loads itself, not Flask's provider; a push's 60 kB body
    took four times as long). Anything msgspec refuses goes to webargs' own reading, which
    decides and words the error as before."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return core.missing
        try:
            return _decode(req.get_data(cache=True))
        except msgspec.MsgspecError:
            return super()._raw_load_json(req)  # type: ignore[misc]


def fast_json(view: Callable) -> Callable:
    """This view's answer (plain JSON values from its response schema) is written by msgspec."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.fast_json = True
        try:
            return view(*args, **kwargs)
        except BaseException:
            g.fast_json = False  # an error answer is written as every other one
            raise

    return wrapper
