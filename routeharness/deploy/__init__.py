"""From a leaderboard to production: saved routers, update, routing input, serve."""
