"""``MRTMath-v0`` served over the network with OpenEnv (the ``openenv`` extra).

* :mod:`mrt_env.openenv.server`: the server (``mrt-gym serve``), built on OpenEnv's
  ``Environment`` and ``create_app``; one trajectory per WebSocket session, μ batched across
  sessions.
* :mod:`mrt_env.openenv.client`: ``MRTMathEnv`` (OpenEnv ``EnvClient``, sync and async) and
  ``MRTMathRemoteEnv`` (``gym.make("MRTMathRemote-v0", base_url=...)``).
* :mod:`mrt_env.openenv.remote_vector`: N remote sessions behind the vector-env interface the
  native trainer's rollout collector uses (``mrt-train --env-url``).

Importing this package imports nothing heavy; the modules need ``pip install 'mrt-gym[openenv]'``.
"""

from __future__ import annotations

__all__: list[str] = []
