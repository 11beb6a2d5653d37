"""The application of the Brussels youth employment assistant: gateway, channels, services, models."""
