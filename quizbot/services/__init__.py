"""Use cases: the quiz engine, scoring, progress, stats, leaderboards; they own the unit of work."""
