"""The pipeline: how a message travels. Receive and answer (dialogue), send (sender), the background workers
and scheduler, the Rasa client, and the supervisor of the processes."""
