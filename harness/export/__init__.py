"""Exports of casemesh profiles to other load tools (``casemesh export ...``): k6 so far."""
