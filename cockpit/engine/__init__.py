"""The training engine: model, trainer thread, commands in, events out. No Textual or Rich here."""
