"""Leaderboards: board definitions and submissions, running a board, verification, standings."""
