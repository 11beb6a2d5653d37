"""Rasa custom actions: thin, they read the tracker, call a service of `bot` and return events."""
