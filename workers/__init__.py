"""Example services, deployable as they are: the demo and docker-compose.yml run them.

Their code lives in the repository's top-level ``workers/`` folder, the
home of what docker-compose.yml deploys, and ships inside the package as
``busignal.examples`` (``busignal/examples`` links to ``workers/``, and a
build copies the files), so that ``busignal demo`` works from any
installation and their names cannot collide with a user's own modules.

* ``busignal.examples.signals``: the named signals every process shares.
* ``busignal.examples.billing``: service ``billing`` (``busignal worker
  busignal.examples.billing --service billing``).
* ``busignal.examples.notifications``: service ``notifications``; its
  welcome email raises on purpose for addresses it cannot deliver to.
* ``busignal.examples.cache``: a broadcast receiver that runs in every
  process that imports it (cache invalidation).
* ``busignal.examples.sender``: ``python -m busignal.examples.sender``
  sends a few events and exits.
"""
