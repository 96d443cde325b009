"""Optional integrations, each behind its own extra.

- ``busignal.contrib.django``: a Django app that configures the bus from
  settings, autodiscovers ``signals`` modules and forwards model signals
  (extra ``django``).
- ``busignal.contrib.prometheus``: worker metrics for Prometheus (extra
  ``metrics``).
- ``busignal.contrib.otel``: OpenTelemetry trace context across the bus
  (extra ``otel``).
"""
