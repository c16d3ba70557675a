"""Everything about trade platforms: models and admin, the manager client, the mirror, the sandbox."""
