"""Settings of the test project; the test sets the Redis URL and the database.

``SHOP_FORWARD_MODEL`` lets a test name a model that does not exist, to see
the startup error. ``SHOP_PG_NAME`` puts the project on that PostgreSQL
database (127.0.0.1:5432, user postgres) instead of SQLite, with
``SHOP_CONN_MAX_AGE`` ("none" for persistent connections) and health checks;
``SHOP_OUTBOX=1`` forwards through the outbox.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "integration-tests-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = ["busignal.contrib.django", "shop"]

DATABASES: dict[str, dict[str, Any]] = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SHOP_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
if os.environ.get("SHOP_PG_NAME"):
    max_age = os.environ.get("SHOP_CONN_MAX_AGE", "0")
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["SHOP_PG_NAME"],
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "USER": "postgres",
        "CONN_MAX_AGE": None if max_age == "none" else int(max_age),
        "CONN_HEALTH_CHECKS": True,
    }

BUSIGNAL = {
    "URL": os.environ["TEST_REDIS_URL"],
    "OUTBOX": os.environ.get("SHOP_OUTBOX") == "1",
    "SECRET": os.environ.get("SHOP_SECRET", ""),
    "FORWARD": {
        os.environ.get("SHOP_FORWARD_MODEL", "shop.Order"): {
            "signals": ["post_save", "post_delete"],
            "fields": ["status", "total"],
        },
    },
}
