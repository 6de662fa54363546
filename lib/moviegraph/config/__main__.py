"""``python -m moviegraph.config > conf/default.toml``: print the documented defaults."""

from moviegraph.config import render_default_toml

print(render_default_toml(), end="")
