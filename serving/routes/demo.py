"""The web demo: ``GET /`` returns one self-contained HTML page (inline CSS and JS, no CDN).

The page calls ``GET /v1/models`` and, one tab per task, ``POST /v1/tag``, ``/v1/classify``,
``/v1/generate`` and ``/v1/translate`` from the browser. It is read from the
``serving`` package's ``static/`` folder (a fixed name, never a path taken from a request), and
served with a Content-Security-Policy that allows exactly the page's own inline script and style
(by SHA-256 hash) and requests to its own origin.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

PAGE = "index.html"

router = APIRouter()


@dataclass(frozen=True)
class DemoPage:
    """The page's HTML and the security headers that go with it."""

    html: str
    headers: dict[str, str]


def _csp_hashes(html: str, tag: str) -> str:
    """``'sha256-…'`` sources for every inline ``<tag>`` block, as CSP Level 2 defines them."""
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
    digests = (base64.b64encode(hashlib.sha256(b.encode("utf-8")).digest()) for b in blocks)
    return " ".join(f"'sha256-{d.decode('ascii')}'" for d in digests)


@lru_cache(maxsize=1)
def load_page() -> DemoPage:
    """Read ``serving/static/index.html`` once and build its headers."""
    html = resources.files("serving").joinpath("static").joinpath(PAGE).read_text(encoding="utf-8")
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src {_csp_hashes(html, 'script')}",
            f"style-src {_csp_hashes(html, 'style')}",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    headers = {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return DemoPage(html=html, headers=headers)


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
def demo_page() -> HTMLResponse:
    """The demo page: tag entities, classify a text, sample from a language model, translate."""
    page = load_page()
    return HTMLResponse(page.html, headers=page.headers)
