"""Helpers experiments share that need a run's Context or Results; no experiment lives here."""
