"""Built-in signals with Django's names and arguments.

Each is a named :class:`~busignal.dispatch.signal.Signal`, so it can be distributed;
``providing_args`` lists the kwargs Django sends with it (documentation
only). The model signals cache receivers per sender, as Django's do.
"""

from __future__ import annotations

from busignal.dispatch.signal import Signal

__all__ = [
    "m2m_changed",
    "post_delete",
    "post_save",
    "pre_delete",
    "pre_save",
    "request_finished",
    "request_started",
]

#: Before a model instance is saved. Sender: the model class.
#: kwargs: instance, raw (saved as loaded from a fixture), using (database
#: alias), update_fields (the fields passed to save(), or None).
pre_save = Signal(
    "pre_save",
    use_caching=True,
    providing_args=["instance", "raw", "using", "update_fields"],
)

#: After a model instance is saved. Sender: the model class.
#: kwargs: instance, created (a new row was inserted), raw, using,
#: update_fields.
post_save = Signal(
    "post_save",
    use_caching=True,
    providing_args=["instance", "created", "raw", "using", "update_fields"],
)

#: Before a model instance is deleted. Sender: the model class.
#: kwargs: instance, using, origin (the Model or QuerySet that delete() was
#: called on).
pre_delete = Signal(
    "pre_delete",
    use_caching=True,
    providing_args=["instance", "using", "origin"],
)

#: After a model instance is deleted. Sender: the model class.
#: kwargs: instance, using, origin.
post_delete = Signal(
    "post_delete",
    use_caching=True,
    providing_args=["instance", "using", "origin"],
)

#: When a many-to-many relation changes. Sender: the intermediate model.
#: kwargs: action ("pre_add", "post_add", "pre_remove", "post_remove",
#: "pre_clear", "post_clear"), instance, reverse (changed from the reverse
#: side), model (the class of the objects added or removed), pk_set (their
#: primary keys, or None for clear), using, and raw (loaded from a fixture)
#: where Django sends it (6.1 and later).
m2m_changed = Signal(
    "m2m_changed",
    use_caching=True,
    providing_args=["action", "instance", "reverse", "model", "pk_set", "using", "raw"],
)

#: When an HTTP request starts. Sender: the handler class.
#: kwargs: environ (the WSGI environ, or the ASGI scope).
request_started = Signal("request_started", providing_args=["environ"])

#: When an HTTP request finishes. Sender: the handler class. No kwargs.
request_finished = Signal("request_finished", providing_args=[])
