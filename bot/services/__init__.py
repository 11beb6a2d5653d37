"""The application's services: used alike by the gateway, the Rasa actions, the scheduler and the inbox."""
