"""moviegraph.sources."""
