"""Project middleware."""

from __future__ import annotations


class ReleaseRenderedResponse:
    """Frees a rendered DRF response's data by reference counting, not by the cyclic GC.

    DRF leaves reference cycles around every response: ``response.renderer_context`` holds
    the response itself and the view, and the view holds the response (``view.response``).
    The response's data (for a page of 500 contratações, ~3,000 dicts and lists) thus stayed
    alive until Python's full collection found the cycle; full collections then walked every
    page kept so far and took up to 180 ms (measured in-process over 150 pages of 500 on a
    slow VM: BENCHMARKS.md), the p99 of a page of 500. Once the body is rendered, nothing
    reads those links again: they are cut, and the data goes when the response goes.
    ``response.data`` itself stays (tests and middleware may read it).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        context = getattr(response, "renderer_context", None)
        if context and getattr(response, "is_rendered", False):
            view = context.get("view")
            if view is not None and getattr(view, "response", None) is response:
                view.response = None
            response.renderer_context = None
        return response
