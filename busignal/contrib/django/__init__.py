"""The busignal Django app: add ``"busignal.contrib.django"`` to INSTALLED_APPS.

On startup it configures the default bus from settings (``BUSIGNAL_URL``
or the ``BUSIGNAL`` dict), forwards the model and request signals that
``BUSIGNAL["FORWARD"]`` chooses to the bus signals of ``busignal.signals``
(with ``publish``: a save never waits on workers), and imports every
installed app's ``signals`` module. With ``BUSIGNAL["OUTBOX"]`` the
forwarded events are rows of the outbox table, written in the save's
transaction (``outbox``) and sent by ``manage.py busignal_relay``
(``relay``); ``manage.py busignal_worker`` runs a worker that looks after
its database connections (``hygiene``). See docs/django.md.
"""
