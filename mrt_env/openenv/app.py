"""A module-level ASGI app, for ``uvicorn mrt_env.openenv.app:app`` (``openenv.yaml``).

Settings come from the environment: ``MRT_GYM_LM`` (μ's model, default ``tiny``),
``MRT_GYM_TOKEN`` (bearer token; unset: no authentication, keep the server on loopback),
``MRT_GYM_K`` and ``MRT_GYM_TOKEN_BUDGET`` (session defaults). Pass ``--ws-max-size`` to
uvicorn to cap WebSocket messages (``mrt-gym serve`` does it for you).
"""

from __future__ import annotations

import os

from mrt_env.openenv.server import ServeSettings, create_mrt_app

settings = ServeSettings(
    lm=os.environ.get("MRT_GYM_LM", "tiny"),
    token=os.environ.get("MRT_GYM_TOKEN") or None,
    defaults={
        "k": int(os.environ.get("MRT_GYM_K", "8")),
        "token_budget": int(os.environ.get("MRT_GYM_TOKEN_BUDGET", "512")),
    },
)
app = create_mrt_app(settings)
