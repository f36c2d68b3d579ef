"""Shared test helpers: real peers started on loopback, validators, fakes."""
