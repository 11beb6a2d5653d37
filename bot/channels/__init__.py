"""Channels: each turns its platform's deliveries into `Inbound` messages for the pipeline and sends what the
outbox worker gives it, through the contract in `bot.pipeline.delivery`."""
