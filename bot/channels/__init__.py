"""Channels: each turns its platform's deliveries into `Inbound` messages and renders `Reply` objects."""
