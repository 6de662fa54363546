"""moviegraph.export."""
