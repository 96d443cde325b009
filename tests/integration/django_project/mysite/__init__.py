"""The Django project of the integration tests (SQLite, busignal app)."""
