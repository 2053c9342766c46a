"""The monthly impact report: figures, words (French/English), charts, rendering (HTML,
PDF) and its making and mailing.
"""
