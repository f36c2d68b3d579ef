"""The Activity page: every delivery of the outbox and each server's status."""
