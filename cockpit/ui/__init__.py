"""The Textual cockpit app."""
