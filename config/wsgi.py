"""The WSGI application (gunicorn, ``runserver``).

Once Django, the URLconf and everything it imports are loaded, those objects are frozen out
of the garbage collector (``gc.freeze``): they live as long as the process, and every full
collection walked all ~100,000 of them again (60 ms each on a slow VM, a p99 of a page of
500: BENCHMARKS.md). With gunicorn's ``--preload`` this also keeps the forked workers from
touching, and so copying, the master's memory pages.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()


def _load_and_freeze() -> None:
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view, serializer, filter
    gc.collect()
    gc.freeze()


_load_and_freeze()
