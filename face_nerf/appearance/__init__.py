"""Appearance of the fitted head beyond what the photo shows: the hair layer and skin completion."""
