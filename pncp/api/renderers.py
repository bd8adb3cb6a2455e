"""The records' JSON renderer: DRF's output, written by orjson.

A page of 500 contratações is ~1 MB of JSON; the standard library's encoder took ~15 µs per
record of it, as long as building the records (BENCHMARKS.md, API benchmarks). orjson writes
the same compact UTF-8 JSON several times faster. Values orjson does not write the way DRF
does (date-times, decimals, lazy strings…) are handed to DRF's own encoder, so the output is
DRF's; anything unusual (an ``indent`` asked in ``Accept``, ASCII-only or non-compact
settings) goes through DRF's renderer unchanged.
"""

from __future__ import annotations

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_drf = JSONEncoder()
OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class FastJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        indent = self.get_indent(accepted_media_type, renderer_context or {})
        if indent is not None or self.ensure_ascii or not self.compact:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=_drf.default, option=OPTIONS)
        except TypeError:  # what orjson cannot write (integers beyond 64 bits): DRF's way
            return super().render(data, accepted_media_type, renderer_context)
        # as DRF: U+2028/U+2029 escaped, so the output is also valid JavaScript
        if b"\xe2\x80\xa8" in body or b"\xe2\x80\xa9" in body:
            body = body.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return body
