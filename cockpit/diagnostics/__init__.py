"""Diagnostics: pre-flight dataset checks, live symptom rules, the checklist. No Textual or Rich here."""
