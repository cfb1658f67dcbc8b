"""The Ray executor: attempts run on the nodes of a Ray cluster, the daemon stays the one writer
of state.

- :mod:`.resources`: what a worker node advertises (attempt slots, usable backends, labels) as
  Ray custom resources, what one attempt asks for, and why no node can take it.

Imported only when the ``ray`` executor is chosen (``pip install 'blitz[ray]'``).
"""
