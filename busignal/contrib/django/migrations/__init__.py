"""The outbox table\x27s migrations."""
