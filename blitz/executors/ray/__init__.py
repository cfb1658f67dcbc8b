"""The Ray executor: attempts run on the nodes of a Ray cluster, the daemon stays the one writer
of state.

- :mod:`.resources`: what a worker node advertises (attempt slots, usable backends, labels) as
  Ray custom resources, what one attempt asks for, and why no node can take it.
- :mod:`.executor`: the daemon side (placement, sync, one streaming Ray task per attempt, landing
  its commit); :mod:`.job`: what it sends a worker for one attempt; :mod:`.placement`: which
  node; :mod:`.sync`: git bundles and what each node holds;
  :mod:`.reach`: whether the cluster's address answers at all; :mod:`.driver`: the Ray driver
  in a child process (:mod:`.driver_main`), so that Ray ending it never ends the daemon.
- :mod:`.remote`: the worker side, in a Ray worker process on a node.
- :mod:`.worker`: ``blitz worker`` (a Ray node advertising what this machine can do);
  :mod:`.membership`: the cluster's workers as ``blitz workers`` and the API list them.

Imported only when the ``ray`` executor is chosen (``pip install 'blitz[ray]'``).
"""

import os

# Ray's ``uv run`` hook (on by default) would give a daemon started under ``uv run`` a runtime_env
# shipping its current directory (a .env file included) to every node. Nothing of the daemon's
# travels but what the executor sends; Ray reads this when it is first imported, which happens
# only under this package.
os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"
