"""Settings of the test project; the test sets the Redis URL and the database.

``SHOP_FORWARD_MODEL`` lets a test name a model that does not exist, to see
the startup error.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "integration-tests-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = ["busignal.contrib.django", "shop"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SHOP_DB", str(BASE_DIR / "db.sqlite3")),
    }
}

BUSIGNAL = {
    "URL": os.environ["TEST_REDIS_URL"],
    "SECRET": os.environ.get("SHOP_SECRET", ""),
    "FORWARD": {
        os.environ.get("SHOP_FORWARD_MODEL", "shop.Order"): {
            "signals": ["post_save", "post_delete"],
            "fields": ["status", "total"],
        },
    },
}
