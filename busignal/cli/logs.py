"""How the CLI logs: readable lines on a terminal, or one JSON object a line.

Only the CLI configures logging (the library only logs). JSON lines are
for log shippers (Loki, Elasticsearch, CloudWatch): every record is one
object with ``time``, ``level``, ``logger`` and ``message``, plus the
fields the worker's log observer attaches (``signal``, ``service``,
``message_id``, ``receiver``, ``duration``, ``ok``) and ``exception``
when there is a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

__all__ = ["JsonFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_PREFIX = "busignal_"  # the worker's structured fields: record.busignal_signal...


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line, whatever the message holds."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key.startswith(_PREFIX):
                entry[key.removeprefix(_PREFIX)] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=repr, ensure_ascii=False)


def configure_logging(level: str, fmt: str) -> None:
    """Send the process's logs to stderr at ``level`` in ``fmt`` (text or json).

    Like ``logging.basicConfig``, it leaves a root logger that already has
    handlers alone (an application embedding ``main()``, or pytest).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler])
