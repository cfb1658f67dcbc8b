"""The model proxy: agent CLIs reach the model providers only through blitz.

An agent CLI (Claude Code, Codex, aider...) gets the proxy's address and a per-attempt token
instead of the real key. The proxy refuses unknown and ended tokens, puts the real key in,
forwards to the real API with streaming preserved, and meters every response into the attempt's
usage as it passes, so spend is known live and a budget is enforced mid-run (further requests get
a 400 the CLI reports). Provider errors pass through unchanged; no key is ever logged or echoed.

Modules, one concept each: :mod:`~blitz.proxy.server` (life cycle), :mod:`~blitz.proxy.forwarding`
(one request), :mod:`~blitz.proxy.sessions` (tokens, budgets, usage), :mod:`~blitz.proxy.metering`
(usage read from JSON and SSE bodies), :mod:`~blitz.proxy.upstream` (URLs and headers),
:mod:`~blitz.proxy.refusals` (the proxy's own errors in each API's format).
"""

from blitz.proxy.server import ModelProxy
from blitz.proxy.sessions import ProxySession
from blitz.proxy.upstream import Upstream

__all__ = ["ModelProxy", "ProxySession", "Upstream"]
