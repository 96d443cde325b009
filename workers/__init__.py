"""Example services, deployable as they are: the demo and docker-compose.yml run them.

* ``workers.signals``: the named signals every process shares.
* ``workers.billing``: service ``billing`` (``busignal worker workers.billing
  --service billing``).
* ``workers.notifications``: service ``notifications``; its welcome email
  raises on purpose for addresses it cannot deliver to.
* ``workers.cache``: a broadcast receiver that runs in every process that
  imports it (cache invalidation).
* ``workers.sender``: ``python -m workers.sender`` sends a few events and exits.
"""
