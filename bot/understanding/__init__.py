"""Understanding text: the reply language, phrase matching, days and times, the distress net, redaction.

Functions of text alone (no session, no network): every layer above may use them.
"""
