"""This process's environment, shared by threads that change it and threads that read it.

Offline, Lambda handlers run in-process and read their function's environment from
``os.environ`` (``adapter.invoke_handler`` sets it for the call and then restores it, removing
what the function added). Other threads meanwhile copy the environment: botocore creating a
client looks for proxies (``urllib.request.getproxies_environment`` walks ``os.environ.items()``),
jobs start subprocesses with a copy of it. Walking ``os.environ`` while another thread removes a
key raises ``KeyError`` for that key (``os._Environ`` lists its keys, then reads each), which once
failed an offline run at a random state. Every change and every walk therefore happens under
``LOCK``; reads of single variables (``os.environ.get``) need none.
"""

from __future__ import annotations

import os
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

LOCK = threading.RLock()  # re-entrant: a handler holding it may create clients or start subprocesses


def snapshot() -> dict[str, str]:
    """A copy of ``os.environ``, taken while no thread changes it."""
    with LOCK:
        return dict(os.environ)


_ORIGINAL_PROXIES = urllib.request.getproxies_environment


def _proxies_from_environment() -> dict[str, str]:
    with LOCK:
        return _ORIGINAL_PROXIES()


@contextmanager
def guarded() -> Iterator[None]:
    """For one offline session: urllib's proxy lookup (which botocore calls for every client it
    creates, through ``urllib.request.getproxies`` and ``proxy_bypass``) walks the environment
    under ``LOCK``."""
    import botocore.utils

    saved = (urllib.request.getproxies_environment, urllib.request.getproxies, botocore.utils.getproxies)
    urllib.request.getproxies_environment = _proxies_from_environment  # proxy_bypass_environment's lookup
    urllib.request.getproxies = botocore.utils.getproxies = _proxies_from_environment
    try:
        yield
    finally:
        urllib.request.getproxies_environment, urllib.request.getproxies, botocore.utils.getproxies = saved
