"""moviegraph.graph."""
