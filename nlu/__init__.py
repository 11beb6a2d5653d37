"""Rasa's own custom NLU components (run inside Rasa, Python 3.10), named in `config.yml`.

They stay thin: the text rules are in `bot/understanding/normalise.py`, shared with the language resolver.
"""
