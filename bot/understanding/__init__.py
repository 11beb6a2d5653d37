"""Understanding text: the reply language, phrase matching, days and times, the distress net, redaction.

Pure functions of text (no database, no network): every layer above may use them."""
