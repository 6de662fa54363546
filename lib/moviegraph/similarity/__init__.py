"""moviegraph.similarity."""
