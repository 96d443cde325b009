"""What is on the wire: formats only, no I/O.

The codec (msgpack with extension types), the envelope of an event, a
service's reply, remote errors, signing, and every Redis key name. Each
module's ``__all__`` names what the rest of busignal uses from it; users
reach the codec through ``busignal.codec``.
"""
